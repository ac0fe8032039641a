package mapping

import (
	"slices"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
)

// Reads are the variables a compiled value may read: a superset of the names its
// formulas can look up, or every variable. A caller that gives a run only the variables
// its values read gets the same results as with all of them (the others are never looked
// up), without making the ones nobody reads.
//
// The analysis is sound by construction: a CEL expression reaches variables only through
// the identifiers of its AST; a JMESPath expression through the root names jmes.RootNames
// finds in it (a superset, or the whole document); a $var locator through its first step
// (or the whole document for $); constants read nothing. data and body are aliases: a
// value that reads either reads both.
type Reads struct {
	all   bool
	names []string // sorted, unique
	mask  uint64   // the names among handleVarBits, for a quick Has
}

// AllReads are the reads of a value that may read every variable.
func AllReads() Reads { return Reads{all: true} }

// All reports whether every variable may be read.
func (r Reads) All() bool { return r.all }

// Has reports whether variable name may be read.
func (r Reads) Has(name string) bool {
	if r.all {
		return true
	}
	if b := varBit(name); b != 0 {
		return r.mask&b != 0
	}
	_, found := slices.BinarySearch(r.names, name)
	return found
}

// varBit is the bit of a variable of a webhook's handle in Reads.mask, 0 for another
// name: a caller asks about each of them for every webhook.
func varBit(name string) uint64 {
	switch name {
	case "connection":
		return 1 << 0
	case "connectorParameters":
		return 1 << 1
	case "credentials":
		return 1 << 2
	case "state":
		return 1 << 3
	case "parameters":
		return 1 << 4
	case "webhookSecret":
		return 1 << 5
	case "method":
		return 1 << 6
	case "query":
		return 1 << 7
	case "headers":
		return 1 << 8
	case "rawBody":
		return 1 << 9
	case "url":
		return 1 << 10
	case "data":
		return 1 << 11
	case "body":
		return 1 << 12
	}
	return 0
}

// withNames returns the reads of names, sorted and unique.
func withNames(names []string) Reads {
	r := Reads{names: names}
	for _, n := range names {
		r.mask |= varBit(n)
	}
	return r
}

// Names returns the names that may be read (nil when All).
func (r Reads) Names() []string {
	if r.all {
		return nil
	}
	return slices.Clone(r.names)
}

// Union returns the variables either r or o may read.
func (r Reads) Union(o Reads) Reads {
	if r.all || o.all {
		return AllReads()
	}
	names := append(slices.Clone(r.names), o.names...)
	slices.Sort(names)
	return withNames(slices.Compact(names))
}

// readSet collects reads while walking nodes.
type readSet struct {
	all   bool
	names []string
}

func (rs *readSet) add(names ...string) {
	for _, n := range names {
		rs.names = append(rs.names, n)
		switch n { // aliases
		case "data":
			rs.names = append(rs.names, "body")
		case "body":
			rs.names = append(rs.names, "data")
		}
	}
}

func (rs *readSet) reads() Reads {
	if rs.all {
		return AllReads()
	}
	names := slices.Clone(rs.names)
	slices.Sort(names)
	return withNames(slices.Compact(names))
}

// Reads returns the variables v may read.
func (v *Value) Reads() Reads {
	if v == nil {
		return Reads{}
	}
	return readsOfRoot(v.root)
}

// Reads returns the variables the expression may read.
func (e *CEL) Reads() Reads {
	if e == nil || e.n == nil {
		return Reads{}
	}
	return readsOfRoot(e.n)
}

// readsOfRoot is the variables the tree at n may read (none for no tree).
func readsOfRoot(n node) Reads {
	if n == nil {
		return Reads{}
	}
	var rs readSet
	readsOf(n, &rs)
	return rs.reads()
}

func readsOf(n node, rs *readSet) {
	switch t := n.(type) {
	case constNode:
	case *mapNode:
		for _, v := range t.vals {
			readsOf(v, rs)
		}
	case *listNode:
		for _, it := range t.items {
			readsOf(it, rs)
		}
	case *celNode:
		rs.add(t.idents...)
	case *jmesNode:
		if t.whole {
			rs.all = true
		}
		rs.add(t.names...)
	case *varNode:
		if len(t.path) == 0 {
			rs.all = true
			return
		}
		rs.add(t.path[0].name)
	case *tplNode:
		for _, v := range t.values {
			readsOf(v, rs)
		}
	default:
		rs.all = true // a node this analysis does not know may read anything
	}
}

// identsOf returns the identifiers of a CEL expression: every variable it can read
// (and its comprehensions' own variables, which do no harm).
func identsOf(a *cel.Ast) []string {
	var out []string
	ast.PreOrderVisit(a.NativeRep().Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if e.Kind() == ast.IdentKind {
			out = append(out, e.AsIdent())
		}
	}))
	slices.Sort(out)
	return slices.Compact(out)
}
