// Command hookmap runs the hookmap service (serve), checks connector folders (validate),
// runs connector tests (test) and prints its version (version).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/hookmap/hookmap/engine"
	"github.com/hookmap/hookmap/server/app"
	"github.com/hookmap/hookmap/server/conntest"
	"github.com/hookmap/hookmap/server/webhookfile"
)

const usage = `hookmap: a webhook integration engine

Usage:
  hookmap serve [flags]       start the service (gRPC, HTTP receiver, store)
  hookmap validate [--webhooks FILE] DIR...
                              load and compile every connector (and check a webhooks file);
                              print each problem as file:line:col: message
  hookmap test [-run RE] [-v] DIR...
                              run each connector's tests/*.test.yml offline against the server's code;
                              print each failure as file:line:col: expected …, got …
  hookmap version             print the version

Run 'hookmap serve -h' for the flags. Every flag is also an environment variable
HOOKMAP_<FLAG> in upper snake case (HOOKMAP_GRPC_ADDR, HOOKMAP_CONNECTORS=dir1,dir2 …).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "test":
		return test(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "hookmap", version())
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "hookmap: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// listFlag is a repeatable flag.
type listFlag struct {
	vals []string
	set  bool
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }

// Set adds comma-separated values; the first Set replaces the defaults.
func (l *listFlag) Set(v string) error {
	if !l.set {
		l.vals, l.set = nil, true
	}
	for _, d := range strings.Split(v, ",") {
		if d = strings.TrimSpace(d); d != "" {
			l.vals = append(l.vals, d)
		}
	}
	return nil
}

func serve(args []string, stderr io.Writer) int {
	cfg, err := serveConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "hookmap:", err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		printLines(stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.Start(ctx, cfg, log)
	if err != nil {
		printLines(stderr, err)
		// A setting that cannot work (a port in use, a bad key, a data dir that is a file)
		// is a usage error like a bad flag; anything else is a failure to run.
		var se *app.StartError
		if errors.As(err, &se) {
			return 2
		}
		return 1
	}
	// SIGHUP reloads; the reloader ends before Stop so no reload runs on a stopped app.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	stopReload, reloadDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(reloadDone)
		for {
			select {
			case <-stopReload:
				return
			case <-hup:
				log.Info("SIGHUP: reloading connectors and the webhooks file")
				a.Reload(ctx)
			}
		}
	}()
	err = a.Wait(ctx)
	close(stopReload)
	<-reloadDone
	log.Info("shutting down")
	a.Stop()
	if err != nil {
		log.Error("server failed", "err", err)
		return 1
	}
	return 0
}

// serveConfig reads serve's configuration: defaults, then HOOKMAP_* variables, then the
// command line (which wins, a --connectors given there replacing the variable's list).
// Problems are written to stderr.
func serveConfig(args []string, stderr io.Writer) (app.Config, error) {
	cfg := app.Defaults()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", cfg.GRPCAddr, "gRPC listen address")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "HTTP receiver listen address")
	fs.StringVar(&cfg.PublicURL, "public-url", cfg.PublicURL, "base of every URL given to external apps")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "folder for the SQLite store and the dev-mode key file")
	fs.StringVar(&cfg.Store, "store", cfg.Store, "a SQLite path (default {data-dir}/hookmap.db), or a postgres:// URL to share one database among replicas (needs --secret-key)")
	conns := &listFlag{vals: cfg.Connectors}
	fs.Var(conns, "connectors", "connector folder (repeatable)")
	fs.StringVar(&cfg.WebhooksFile, "webhooks", cfg.WebhooksFile, "YAML or JSON file of declared outgoing webhooks, applied at start and on SIGHUP")
	fs.StringVar(&cfg.AdminToken, "admin-token", cfg.AdminToken, "admin bearer token; required unless gRPC is on loopback (dev mode)")
	fs.StringVar(&cfg.SecretKey, "secret-key", cfg.SecretKey, "32-byte key (base64 or hex) encrypting secrets at rest (default: a key file in the data dir)")
	fs.BoolVar(&cfg.AllowPrivateNetworks, "allow-private-networks", cfg.AllowPrivateNetworks, "allow outbound calls to loopback and private addresses")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "text or json")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	fs.DurationVar(&cfg.DeliveryRetention, "delivery-retention", cfg.DeliveryRetention, "how long delivery records and kept requests are kept")
	fs.DurationVar(&cfg.IdempotencyWindow, "idempotency-window", cfg.IdempotencyWindow, "how long an event id is remembered to drop re-deliveries")
	fs.DurationVar(&cfg.EventRetention, "event-retention", cfg.EventRetention, "how long events are kept (0: forever)")
	fs.DurationVar(&cfg.InvocationRetention, "invocation-retention", cfg.InvocationRetention, "how long outgoing webhook invocation records are kept")
	fs.BoolVar(&cfg.JSONAPI, "json-api", cfg.JSONAPI, "serve every hookmap.v1 RPC as JSON over HTTP under /api/ on the HTTP port")
	fs.BoolVar(&cfg.Console, "console", cfg.Console, "serve the web console under /console/ on the HTTP port (needs --json-api)")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", cfg.MaxBodyBytes, "largest webhook body accepted (413 above)")
	fs.DurationVar(&cfg.EvalTimeout, "eval-timeout", cfg.EvalTimeout, "longest a mapping method, or the formulas of one delivery, may run")
	if err := applyEnv(fs); err != nil {
		fmt.Fprintln(stderr, "hookmap:", err)
		return cfg, err
	}
	conns.set = false        // a --connectors on the command line replaces HOOKMAP_CONNECTORS
	fs.SetOutput(io.Discard) // a bad flag is one line below, not the whole usage
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintln(stderr, "Usage: hookmap serve [flags]")
			fs.PrintDefaults()
		} else {
			fmt.Fprintf(stderr, "hookmap: %v (run 'hookmap serve -h' for the flags)\n", err)
		}
		return cfg, err
	}
	cfg.Connectors = conns.vals
	return cfg, nil
}

// applyEnv sets each flag from HOOKMAP_<FLAG> when that variable is set (flags given on
// the command line win, since they are parsed afterwards).
func applyEnv(fs *flag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := "HOOKMAP_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
		}
	})
	return errors.Join(errs...)
}

func newLogger(cfg app.Config, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", cfg.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch cfg.LogFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", cfg.LogFormat)
}

func validate(args []string, stdout, stderr io.Writer) int {
	var dirs, files []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--webhooks" || a == "-webhooks":
			if i+1 == len(args) {
				fmt.Fprintln(stderr, "usage: hookmap validate [--webhooks FILE] DIR...")
				return 2
			}
			i++
			files = append(files, args[i])
		case strings.HasPrefix(a, "--webhooks="):
			files = append(files, strings.TrimPrefix(a, "--webhooks="))
		default:
			dirs = append(dirs, a)
		}
	}
	if len(dirs) == 0 && len(files) == 0 {
		fmt.Fprintln(stderr, "usage: hookmap validate [--webhooks FILE] DIR...")
		return 2
	}
	for _, d := range dirs {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			fmt.Fprintf(stderr, "%s: not a folder\n", d)
			return 1
		}
	}
	var diags []engine.Diagnostic
	if len(dirs) > 0 {
		set, ds := engine.Load(dirs...)
		for _, c := range set.Connectors() {
			fmt.Fprintln(stdout, "ok", c.Summary())
		}
		diags = append(diags, ds...)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
			return 1
		}
		f, ds := webhookfile.Check(path, data, os.LookupEnv)
		if len(ds) == 0 {
			fmt.Fprintf(stdout, "ok %s: %d webhook%s\n", path, len(f.Entries), plural(len(f.Entries)))
		}
		diags = append(diags, ds...)
	}
	for _, d := range diags {
		fmt.Fprintln(stdout, d.String())
	}
	if len(diags) > 0 {
		fmt.Fprintf(stdout, "%d problem%s\n", len(diags), plural(len(diags)))
		return 1
	}
	return 0
}

// printLines writes err as one "hookmap: ..." line per problem (a joined error holds several).
func printLines(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			fmt.Fprintln(w, "hookmap:", line)
		}
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func test(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	run := fs.String("run", "", "run only the tests whose name matches this regular expression")
	verbose := fs.Bool("v", false, "print every test, not only the failed ones")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: hookmap test [-run REGEXP] [-v] DIR...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	dirs := fs.Args()
	if len(dirs) == 0 {
		fs.Usage()
		return 2
	}
	for _, d := range dirs {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			fmt.Fprintf(stderr, "%s: not a folder\n", d)
			return 1
		}
	}
	opts := conntest.Options{Verbose: *verbose, Out: stdout}
	if *run != "" {
		re, err := regexp.Compile(*run)
		if err != nil {
			fmt.Fprintf(stderr, "-run: %v\n", err)
			return 2
		}
		opts.Run = re
	}
	sum, err := conntest.Run(context.Background(), dirs, opts)
	if err != nil {
		fmt.Fprintln(stderr, "hookmap test:", err)
		return 1
	}
	if !sum.OK() {
		return 1
	}
	return 0
}
