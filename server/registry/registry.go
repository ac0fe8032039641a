package registry

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookmap/hookmap/engine"
)

// Registry is the current set of connectors, loaded from fixed folders.
type Registry struct {
	dirs   []string
	mu     sync.Mutex // serialises reloads
	loaded atomic.Pointer[engine.Set]
	last   atomic.Pointer[lastLoad]
}

type lastLoad struct {
	at    time.Time
	diags []engine.Diagnostic
}

// ReloadResult says what a reload did.
type ReloadResult struct {
	Diagnostics  []engine.Diagnostic
	Loaded       []string // connectors loaded afresh
	KeptPrevious []string // connectors with problems that kept their previous version
}

// New loads the connectors in dirs. Connectors with problems are left out; their
// diagnostics are returned.
func New(dirs ...string) (*Registry, []engine.Diagnostic) {
	r := &Registry{dirs: append([]string(nil), dirs...)}
	res := r.Reload()
	return r, res.Diagnostics
}

// Reload loads the folders afresh. A connector that fails to load keeps its previous
// version; a connector whose folder disappeared is dropped.
func (r *Registry) Reload() ReloadResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	next, diags := engine.Load(r.dirs...)
	res := ReloadResult{Diagnostics: diags}
	for _, c := range next.Connectors() {
		res.Loaded = append(res.Loaded, c.Key)
	}
	if prev := r.loaded.Load(); prev != nil {
		broken := map[string]bool{}
		for _, d := range diags {
			if k := connectorKeyOf(d.File, r.dirs); k != "" {
				broken[k] = true
			}
		}
		for k := range broken {
			if _, ok := next.Connector(k); ok {
				continue
			}
			if c, ok := prev.Connector(k); ok {
				next.Add(c)
				res.KeptPrevious = append(res.KeptPrevious, k)
			}
		}
	}
	sort.Strings(res.KeptPrevious)
	r.loaded.Store(next)
	r.last.Store(&lastLoad{at: time.Now().UTC(), diags: diags})
	return res
}

// LastLoad returns when the last load (New or Reload) ran and the problems it found.
func (r *Registry) LastLoad() (time.Time, []engine.Diagnostic) {
	l := r.last.Load()
	if l == nil {
		return time.Time{}, nil
	}
	return l.at, l.diags
}

// Validate loads the folders afresh without changing what is loaded.
func (r *Registry) Validate() (*engine.Set, []engine.Diagnostic) {
	return engine.Load(r.dirs...)
}

// Connector returns the loaded connector with key.
func (r *Registry) Connector(key string) (*engine.Connector, bool) {
	return r.loaded.Load().Connector(key) // a nil *Set has none
}

// Connectors returns the loaded connectors sorted by key.
func (r *Registry) Connectors() []*engine.Connector { return r.loaded.Load().Connectors() }
