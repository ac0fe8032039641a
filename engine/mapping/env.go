package mapping

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"cel.dev/cel-go/cel"

	"github.com/hookmap/hookmap/engine/celfn"
	"github.com/hookmap/hookmap/engine/jmes"
)

// CostLimit bounds the cost of one CEL evaluation (cel-go's cost units: roughly one per
// operation, per element visited by a comprehension, and per byte of string work).
const CostLimit = 1_000_000

// InterruptCheckFrequency is how many comprehension iterations pass between checks of the
// context for cancellation.
const InterruptCheckFrequency = 100

// Env is the compile-time environment of one method: its declared variables.
type Env struct {
	cel   *cel.Env
	vars  map[string]bool
	names []string
}

var envCache = struct {
	sync.Mutex
	m map[string]*Env
}{m: map[string]*Env{}}

// NewEnv returns the environment declaring vars (each of type dyn). Environments are
// cached by their variable set.
func NewEnv(vars ...string) (*Env, error) {
	names := append([]string(nil), vars...)
	sort.Strings(names)
	names = dedup(names)
	key := strings.Join(names, ",")
	envCache.Lock()
	defer envCache.Unlock()
	if e, ok := envCache.m[key]; ok {
		return e, nil
	}
	base, err := celfn.BaseEnv()
	if err != nil {
		return nil, err
	}
	opts := make([]cel.EnvOption, 0, len(names))
	set := make(map[string]bool, len(names))
	for _, n := range names {
		opts = append(opts, cel.Variable(n, cel.DynType))
		set[n] = true
	}
	ce, err := base.Extend(opts...)
	if err != nil {
		return nil, fmt.Errorf("declare variables %s: %w", key, err)
	}
	e := &Env{cel: ce, vars: set, names: names}
	envCache.m[key] = e
	return e, nil
}

func dedup(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// Has reports whether name is a declared variable.
func (e *Env) Has(name string) bool { return e.vars[name] || name == celfn.NowVar }

// Names returns the declared variables, sorted.
func (e *Env) Names() []string { return append([]string(nil), e.names...) }

var compiles atomic.Int64

// Compiles returns how many formulas (CEL and JMESPath) have been compiled by this
// process, for tests and benchmarks that check evaluation never compiles.
func Compiles() int64 { return compiles.Load() + jmes.Compiles() }
