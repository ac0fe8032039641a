package webhookfile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/hookmap/hookmap/engine/diag"
	"github.com/hookmap/hookmap/server/outgoing"
	"github.com/hookmap/hookmap/server/store"
)

// Loader applies a webhooks file. It is safe for concurrent use: reloads run one at a time.
type Loader struct {
	Path   string
	Sender *outgoing.Sender
	// Getenv resolves ${env:NAME} (default os.LookupEnv).
	Getenv Getenv
	// DefaultWorkspace is the workspace of an entry that names none.
	DefaultWorkspace string
	Logger           *slog.Logger // default: discarded

	mu sync.Mutex
}

// Result says what a reload did. Webhooks are named "workspace/id", sorted.
type Result struct {
	Diagnostics []diag.Diagnostic
	Created     []string
	Updated     []string
	Unchanged   []string
	// Deleted are declared webhooks that left the file.
	Deleted []string
	// KeptPrevious are declared webhooks whose entry has problems, or that left the file
	// but cannot be deleted (still used): their stored version stays.
	KeptPrevious []string
}

// ErrUnreadable is a webhooks file that cannot be read.
var ErrUnreadable = errors.New("cannot read the webhooks file")

// Reload reads the file and makes the declared webhooks match it. It returns an error
// wrapping ErrUnreadable when the file cannot be read, or the store's error; problems of
// the file itself are Result.Diagnostics. A file that does not parse changes nothing.
func (l *Loader) Reload(ctx context.Context) (Result, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	data, err := os.ReadFile(l.Path)
	if err != nil {
		return Result{}, fmt.Errorf("%w %s: %w", ErrUnreadable, l.Path, err)
	}
	getenv := l.Getenv
	if getenv == nil {
		getenv = os.LookupEnv
	}
	f, diags := Parse(l.Path, data, getenv, l.DefaultWorkspace)
	res := Result{Diagnostics: diags}
	stored, err := l.Sender.ListDeclared(ctx)
	if err != nil {
		return res, err
	}
	declared := map[string]bool{}
	for _, e := range f.Entries {
		declared[e.Key()] = true
	}
	sorted, loops := order(f.Entries)
	for _, e := range f.Entries {
		if loop, ok := loops[e]; ok {
			l.problem(&res, e, "next.webhook_id", "webhook %q: next.webhook_id: the chain would loop: %s", e.Registration.ID, loop)
			f.Broken[e.Key()] = true
		}
	}
	for _, e := range sorted {
		if err := l.apply(ctx, e, &res); err != nil {
			return res, err
		}
	}
	for key := range f.Broken {
		declared[key] = true
	}
	kept := map[string]bool{}
	for _, k := range res.KeptPrevious {
		kept[k] = true
	}
	for _, w := range stored {
		key := w.WorkspaceID + "/" + w.ID
		switch {
		case f.Broken[key] && !kept[key]:
			res.KeptPrevious = append(res.KeptPrevious, key)
		case declared[key]:
		case f.Incomplete:
			res.KeptPrevious = append(res.KeptPrevious, key)
		default:
			err := l.Sender.DeleteDeclared(ctx, w.WorkspaceID, w.ID)
			switch {
			case err == nil, errors.Is(err, store.ErrNotFound):
				res.Deleted = append(res.Deleted, key)
			case errors.Is(err, store.ErrInUse):
				res.Diagnostics = append(res.Diagnostics, diag.Diagnostic{File: l.Path,
					Message: fmt.Sprintf("webhook %q of workspace %q left the file but is kept: %v", w.ID, w.WorkspaceID, err)})
				res.KeptPrevious = append(res.KeptPrevious, key)
			default:
				return res, err
			}
		}
	}
	for _, s := range [][]string{res.Created, res.Updated, res.Unchanged, res.Deleted, res.KeptPrevious} {
		sort.Strings(s)
	}
	diag.Sort(res.Diagnostics)
	l.log(ctx, res)
	return res, nil
}

// apply registers or replaces one entry; problems are diagnostics, other errors returned.
func (l *Loader) apply(ctx context.Context, e *Entry, res *Result) error {
	r := e.Registration
	key := e.Key()
	cur, err := l.Sender.Get(ctx, e.Workspace, r.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if _, err = l.Sender.Register(ctx, e.Workspace, r); err == nil {
			res.Created = append(res.Created, key)
			return nil
		}
	case err != nil:
		return err
	case cur.Source != store.SourceFile:
		l.problem(res, e, "id", "webhook %q of workspace %q was registered through the API: delete it there (DeleteWebhook) or pick another id", r.ID, e.Workspace)
		return nil
	default:
		var changed bool
		if _, changed, err = l.Sender.Replace(ctx, e.Workspace, r); err == nil {
			if changed {
				res.Updated = append(res.Updated, key)
			} else {
				res.Unchanged = append(res.Unchanged, key)
			}
			return nil
		}
	}
	var ie *outgoing.InvalidError
	switch {
	case errors.As(err, &ie):
		for _, v := range ie.Violations {
			l.problem(res, e, v.Field, "webhook %q: %s: %s", r.ID, v.Field, v.Description)
		}
	case errors.Is(err, store.ErrNotFound):
		l.problem(res, e, "workspace", "webhook %q: workspace %q does not exist", r.ID, e.Workspace)
	case errors.Is(err, store.ErrAlreadyExists):
		l.problem(res, e, "id", "webhook %q of workspace %q was registered meanwhile through the API", r.ID, e.Workspace)
	default:
		return err
	}
	if cur != nil && cur.Source == store.SourceFile {
		res.KeptPrevious = append(res.KeptPrevious, key)
	}
	return nil
}

func (l *Loader) problem(res *Result, e *Entry, field, format string, args ...any) {
	res.Diagnostics = append(res.Diagnostics, problemAt(l.Path, e, field, format, args...))
}

// problemAt is a diagnostic at the position of an entry's field.
func problemAt(path string, e *Entry, field, format string, args ...any) diag.Diagnostic {
	line, col := e.pos(field)
	return diag.Diagnostic{File: path, Line: line, Col: col, Message: fmt.Sprintf(format, args...)}
}

func (l *Loader) log(ctx context.Context, res Result) {
	log := l.Logger
	if log == nil {
		return
	}
	for _, d := range res.Diagnostics {
		log.WarnContext(ctx, "webhooks file problem (entry not applied)", "problem", d.String())
	}
	log.InfoContext(ctx, "webhooks file applied", "file", l.Path, "created", res.Created, "updated", res.Updated,
		"unchanged", len(res.Unchanged), "deleted", res.Deleted, "kept_previous", res.KeptPrevious, "problems", len(res.Diagnostics))
}

// Check reads a webhooks file and validates every entry without a store (hookmap
// validate): its syntax, its environment variables, each registration as RegisterWebhook
// would, and loops among its chains. What needs the store (workspaces, ids registered
// through the API, next webhooks declared elsewhere) is checked when it is applied.
func Check(path string, data []byte, getenv Getenv) (*File, []diag.Diagnostic) {
	f, diags := Parse(path, data, getenv, "default")
	_, loops := order(f.Entries)
	for _, e := range f.Entries {
		if loop, ok := loops[e]; ok {
			diags = append(diags, problemAt(path, e, "next.webhook_id", "webhook %q: next.webhook_id: the chain would loop: %s", e.Registration.ID, loop))
			continue
		}
		var ie *outgoing.InvalidError
		if err := outgoing.Check(e.Registration); errors.As(err, &ie) {
			for _, v := range ie.Violations {
				diags = append(diags, problemAt(path, e, v.Field, "webhook %q: %s: %s", e.Registration.ID, v.Field, v.Description))
			}
		}
	}
	diag.Sort(diags)
	return f, diags
}

// order sorts entries so that a webhook comes after the webhook it continues into when
// both are in the file (registration needs the next webhook to exist). Entries whose
// chain loops back to them are left out, each with the loop it is in.
func order(entries []*Entry) ([]*Entry, map[*Entry]string) {
	byKey := make(map[string]*Entry, len(entries))
	for _, e := range entries {
		byKey[e.Key()] = e
	}
	const (
		visiting = 1
		done     = 2
	)
	state := map[*Entry]int{}
	loops := map[*Entry]string{}
	var sorted []*Entry
	var path []*Entry
	var visit func(e *Entry)
	visit = func(e *Entry) {
		state[e] = visiting
		path = append(path, e)
		if n := e.Registration.Next; n != nil {
			if target, ok := byKey[e.Workspace+"/"+n.WebhookID]; ok {
				switch state[target] {
				case visiting:
					i := len(path) - 1
					for path[i] != target {
						i--
					}
					ids := make([]string, 0, len(path)-i+1)
					for _, p := range path[i:] {
						ids = append(ids, p.Registration.ID)
					}
					loop := strings.Join(append(ids, target.Registration.ID), " → ")
					for _, p := range path[i:] {
						loops[p] = loop
					}
				case 0:
					visit(target)
				}
			}
		}
		path = path[:len(path)-1]
		state[e] = done
		if _, looped := loops[e]; !looped {
			sorted = append(sorted, e)
		}
	}
	for _, e := range entries {
		if state[e] == 0 {
			visit(e)
		}
	}
	return sorted, loops
}
