// Package yamlsrc parses connector YAML files keeping line and column of every node, and
// turns nodes into plain values (see engine/value) and positions inside scalars into
// file positions, so every problem can be reported as file:line:col.
package yamlsrc
