package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// docsWithFlagTable hold the generated flag table between markers.
var docsWithFlagTable = []string{"../../docs/configuration.md", "../../README.md"}

// flagTable renders serveOptions as the Markdown table of
// docs/configuration.md.
func flagTable() string {
	var b strings.Builder
	b.WriteString("| Flag | Environment | Default | Meaning |\n|---|---|---|---|\n")
	for _, o := range serveOptions {
		env := "`" + o.Env() + "`"
		if o.Secret {
			env += " or `" + o.Env() + "_FILE`"
		}
		def := "—"
		if o.Default != "" {
			def = "`" + o.Default + "`"
		}
		b.WriteString("| `--" + o.Flag + "` | " + env + " | " + def + " | " + strings.ReplaceAll(o.Usage, "|", "\\|") + " |\n")
	}
	return b.String()
}

// TestConfigurationDocMatchesFlags keeps docs/configuration.md and the
// README in step
// with serveOptions: every flag has a row with its environment variable and
// default, and the document names no flag that does not exist. Run with
// SCIMJIT_UPDATE_DOCS=1 to rewrite the table from the code.
func TestConfigurationDocMatchesFlags(t *testing.T) {
	for _, path := range docsWithFlagTable {
		t.Run(path, func(t *testing.T) { checkFlagTable(t, path) })
	}
}

func checkFlagTable(t *testing.T, configDoc string) {
	data, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- flags:begin -->\n", "<!-- flags:end -->"
	doc := string(data)
	if os.Getenv("SCIMJIT_UPDATE_DOCS") == "1" {
		i, j := strings.Index(doc, begin), strings.Index(doc, end)
		if i < 0 || j < i {
			t.Fatal("markers not found")
		}
		doc = doc[:i+len(begin)] + flagTable() + doc[j:]
		if err := os.WriteFile(configDoc, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	row := regexp.MustCompile("(?m)^\\|\\s*`--([a-z0-9-]+)`\\s*\\|\\s*`([A-Z0-9_]+)`[^|]*\\|\\s*([^|]*?)\\s*\\|")
	documented := map[string][2]string{}
	for _, m := range row.FindAllStringSubmatch(doc, -1) {
		documented[m[1]] = [2]string{m[2], strings.Trim(m[3], "` ")}
	}
	for _, o := range serveOptions {
		d, ok := documented[o.Flag]
		if !ok {
			t.Errorf("--%s is not documented in %s", o.Flag, configDoc)
			continue
		}
		if d[0] != o.Env() {
			t.Errorf("--%s: documented env %s, want %s", o.Flag, d[0], o.Env())
		}
		def := o.Default
		if def == "" {
			def = "—"
		}
		if d[1] != def {
			t.Errorf("--%s: documented default %q, want %q", o.Flag, d[1], def)
		}
		delete(documented, o.Flag)
	}
	for f := range documented {
		t.Errorf("%s documents --%s, which does not exist", configDoc, f)
	}
}
