// Package pgtest gives tests a PostgreSQL database to run hookmap's Postgres store on.
//
// The server comes from the environment: HOOKMAP_TEST_POSTGRES holds its URL (.ci/postgres.sh
// starts one on loopback and sets it). Without it a test is skipped with a message saying
// how to run it, except under CI=true, where a missing server fails the test: CI must
// never pass by skipping the Postgres tests.
package pgtest
