// Command ingest measures hookmap's receiver side by side with a minimal durable pipeline
// on the same stack (bench/pipeline: net/http, encoding/json, one CEL and one JMESPath
// expression, SQLite in WAL mode with synchronous=FULL and a group commit), in one run, on
// this machine.
//
//	go run ./bench/ingest                         # 2 rounds of 10 s each, wrk if installed
//	go run ./bench/ingest -rounds 3 -duration 30s
//	go run ./bench/ingest -load go                # the built-in generator even with wrk
//	go run ./bench/ingest -consumer=false         # no consumer streaming during the load
//	go run ./bench/ingest -soak 1h -rate 450      # an hour of paced load on hookmap alone
//	go run ./bench/ingest -cpuprofile prof        # and a CPU profile of each throughput phase (in ./prof)
//
// It builds hookmap (./server/cmd/hookmap) and the pipeline into a temporary folder with
// plain go build, then runs rounds; each round runs the pipeline, then hookmap, each as a
// subprocess with a fresh data folder, listening on 127.0.0.1 only. hookmap serves the
// connector in bench/connector (one event whose handle does the pipeline's work) as
// production runs it: auth on (a random --admin-token) and a --secret-key. The harness
// creates a workspace and an API key with the admin token, then a connection and a
// subscription with the key over gRPC (the consumer streams with the key too), and posts
// to the subscription's webhook URI. Both get the same ~1 KiB JSON body.
//
// Phases, for each system:
//
//   - Throughput: a warm-up (-warmup, 2 s), then -duration of closed-loop load with
//     -connections (32) keep-alive connections: wrk with one thread when it is on the PATH
//     (and -load is auto or wrk), else the built-in Go generator. It records acknowledged
//     (2xx) requests per second, p50 and p99 latency, non-2xx answers and socket errors.
//     With hookmap, a consumer (the Go client's Consume, acking in batches as a real
//     consumer does) streams the events during the load unless -consumer=false; the line
//     says which, how many events it received during the load and how long after the load
//     it had caught up.
//   - Receive-to-stream latency (hookmap only): an open-loop generator sends -rate
//     webhooks per second for -paced while the consumer records, for each event, the time
//     it got it minus the event's receive_time (the same machine's clock). It reports
//     that latency's p50, p99, max and count, and the phase's achieved rate and HTTP p99.
//
// For every phase: the subprocess's peak RSS (VmHWM from /proc/PID/status, reset at the
// phase's start through /proc/PID/clear_refs where the kernel allows it, and the highest
// VmRSS sampled every 100 ms), the WAL file's peak size (sampled every 100 ms) and the WAL
// bytes written per acknowledged webhook (the delta of hookmap's
// hookmap_store_wal_written_bytes_total, or of the pipeline's /stats, over the phase), and
// the subprocess's CPU time (user and system, from /proc/PID/stat) per acknowledged
// webhook and over the phase's length (cpu_cores). On a machine whose cores the load
// saturates, throughput follows CPU per webhook.
//
// -cpuprofile DIR writes a CPU profile of each system's throughput phase (after the
// warm-up) to DIR/SYSTEM-roundN.pprof, read with go tool pprof. hookmap is then built with
// -tags benchprofile, which lets it start and stop a profile on SIGUSR1 and SIGUSR2
// (package bench/sigprof); a binary built without the tag never does.
//
// Output: one line per system per round, then a summary: hookmap's throughput over the
// pipeline's per round and over all rounds (total acknowledged over total time), the p99
// ratio (mean of the rounds' p99s), and each goal of the receiver, "met" or "short":
// throughput ratio >= 0.9, p99 <= 1.25x the pipeline's, receive-to-stream p99 <= 5 ms at
// 1,000/s, peak RSS <= 150 MiB, WAL <= 4 KiB per webhook under load (the throughput
// phase; the paced phase's figure is printed beside it) and WAL peak <= 64 MiB (the worst
// phase of any round). The exit status is 0 whatever the figures; it is 1 only when the
// harness fails (a build fails, a subprocess dies, every request of a phase fails) and 2
// on bad flags.
//
// -soak D runs hookmap alone with its consumer streaming and -rate webhooks per second
// for D, printing every 10 s the WAL file's size and peak, the RSS, and the
// receive-to-stream p99 so far; it ends with the WAL peak goal.
//
// The load generator, the consumer and the system under test share the machine's cores:
// on a small machine the generator's own CPU is part of what limits both systems.
// Subprocesses are stopped and the temporary folder removed when the run ends, fails or
// is interrupted (Ctrl-C); on Linux they are also killed if the harness itself is.
package main
