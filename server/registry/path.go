package registry

import (
	"os"
	"path/filepath"
	"strings"
)

// connectorKeyOf returns the key of the connector a diagnostic's file belongs to: the
// first path element below the connectors folder (or the folder itself when it is one
// connector).
func connectorKeyOf(file string, dirs []string) string {
	clean := filepath.Clean(file)
	for _, d := range dirs {
		d = filepath.Clean(d)
		if _, err := os.Stat(filepath.Join(d, "spec.yml")); err == nil {
			if strings.HasPrefix(clean, d+string(filepath.Separator)) {
				return filepath.Base(d)
			}
			continue
		}
		rel, err := filepath.Rel(d, clean)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		if i := strings.IndexRune(rel, filepath.Separator); i > 0 {
			return rel[:i]
		}
	}
	return ""
}
