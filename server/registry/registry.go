package registry

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/hookmap/hookmap/engine"
)

// Registry is the current set of connectors, loaded from fixed folders.
type Registry struct {
	dirs   []string
	mu     sync.Mutex // serialises reloads
	loaded atomic.Pointer[snapshot]
}

type snapshot struct {
	byKey map[string]*engine.Connector
	keys  []string
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
	set, diags := engine.Load(r.dirs...)
	next := &snapshot{byKey: map[string]*engine.Connector{}}
	var res ReloadResult
	res.Diagnostics = diags
	for _, c := range set.Connectors() {
		next.byKey[c.Key] = c
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
			if _, ok := next.byKey[k]; ok {
				continue
			}
			if c, ok := prev.byKey[k]; ok {
				next.byKey[k] = c
				res.KeptPrevious = append(res.KeptPrevious, k)
			}
		}
	}
	for k := range next.byKey {
		next.keys = append(next.keys, k)
	}
	sort.Strings(next.keys)
	sort.Strings(res.KeptPrevious)
	r.loaded.Store(next)
	return res
}

// Validate loads the folders afresh without changing what is loaded.
func (r *Registry) Validate() (*engine.Set, []engine.Diagnostic) {
	return engine.Load(r.dirs...)
}

// Connector returns the loaded connector with key.
func (r *Registry) Connector(key string) (*engine.Connector, bool) {
	s := r.loaded.Load()
	if s == nil {
		return nil, false
	}
	c, ok := s.byKey[key]
	return c, ok
}

// Connectors returns the loaded connectors sorted by key.
func (r *Registry) Connectors() []*engine.Connector {
	s := r.loaded.Load()
	if s == nil {
		return nil
	}
	out := make([]*engine.Connector, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, s.byKey[k])
	}
	return out
}
