// Package diag defines the load-time diagnostic of hookmap's engine: a problem in a
// connector file with its position, printed as "file:line:col: message".
package diag
