package saml_test

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	crewjam "github.com/crewjam/saml"

	"github.com/scimjit/scimjit/server"
	"github.com/scimjit/scimjit/server/servertest"
)

// groupGuides are the IdP guides with a "Roles from groups" section.
var groupGuides = []string{"../docs/idp-okta.md", "../docs/idp-entra.md", "../docs/idp-onelogin.md", "../docs/idp-google.md"}

var (
	groupsSection = regexp.MustCompile(`(?ms)^## \d+\. Roles from groups\n.*?(?:\n## |\z)`)
	codeBlock     = regexp.MustCompile("(?ms)^```(\\w*)\n(.*?)^```")
	tableColumns  = regexp.MustCompile(`\s{2,}`)
)

// guideAttribute is a SAML attribute as a guide shows it.
type guideAttribute struct {
	Name       string   `xml:"Name,attr"`
	NameFormat string   `xml:"NameFormat,attr"`
	Values     []string `xml:"AttributeValue"`
}

// TestIdPGuidesGroupAttributesGiveRoles keeps the "Roles from groups"
// sections of the IdP guides true against a real sign-in: the guide's rules
// (its admin API JSON, sent as written) are set on a workspace; each SAML
// attribute the guide shows is signed into a real assertion, and the
// sign-in reads it as the groups (a rule decides) or as Entra's overage
// claim (groups unknown); for the first one, the roles explain call answers
// what the guide's members explain table says.
func TestIdPGuidesGroupAttributesGiveRoles(t *testing.T) {
	env := servertest.New(t, nil)
	idp := newSSOIdP(t, "https://idp.test")
	for _, path := range groupGuides {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			section := groupsSection.FindString(string(data))
			if section == "" {
				t.Fatalf("%s has no \"## N. Roles from groups\" section", path)
			}
			ws := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "idp-"), ".md")
			addWorkspace(t, env, ws, idp, nil)
			var attrs [][]crewjam.Attribute
			var rulesSet bool
			var explainTable string
			for _, b := range codeBlock.FindAllStringSubmatch(section, -1) {
				switch lang, text := b[1], b[2]; {
				case lang == "json" && strings.Contains(text, `"groupRules"`):
					var body any
					if err := json.Unmarshal([]byte(text), &body); err != nil {
						t.Fatalf("the rules JSON is not JSON: %v", err)
					}
					res, answer := env.Admin(t, http.MethodPatch, "/admin/v1/workspaces/"+ws, body)
					if res.StatusCode != http.StatusOK {
						t.Fatalf("the guide's rules: %d %s", res.StatusCode, answer)
					}
					rulesSet = true
				case lang == "xml":
					var a guideAttribute
					if err := xml.Unmarshal([]byte(text), &a); err != nil || a.Name == "" || len(a.Values) == 0 {
						t.Fatalf("an attribute of the guide does not read as a SAML Attribute (%v):\n%s", err, text)
					}
					ca := crewjam.Attribute{Name: a.Name, NameFormat: a.NameFormat}
					for _, v := range a.Values {
						ca.Values = append(ca.Values, crewjam.AttributeValue{Type: "xs:string", Value: v})
					}
					attrs = append(attrs, []crewjam.Attribute{ca})
				case lang == "" && strings.HasPrefix(text, "$ scimjit members explain"):
					explainTable = text
				}
			}
			if !rulesSet || len(attrs) == 0 || explainTable == "" {
				t.Fatalf("the section lacks the rules JSON (%v), a SAML attribute (%d) or the members explain table (%q)", rulesSet, len(attrs), explainTable)
			}
			for i, a := range attrs {
				email := fmt.Sprintf("person%d@%s.example", i, ws)
				u := signInOK(t, env, idp, ws, email, a...)
				var detail map[string]string
				for _, ev := range events(t, env, ws, "jit.user.created") {
					if ev.UserID == u.ID {
						detail = ev.Detail
					}
				}
				byRule := detail["dev.source"] == "rule" || detail["test.source"] == "rule" || detail["prod.source"] == "rule"
				if !byRule && detail["groups"] != "unknown" {
					t.Errorf("attribute %q: the sign-in read neither groups nor an overage claim from it: %v", a[0].Name, detail)
				}
				if i == 0 {
					checkExplainTable(t, env, ws, u.ID, explainTable)
				}
			}
		})
	}
}

// checkExplainTable compares a guide's members explain table with the
// explain call's answer for userID: environment, role, source, event type,
// and for a rule its number and group.
func checkExplainTable(t *testing.T, env *servertest.Env, ws, userID, table string) {
	t.Helper()
	res, body := env.Admin(t, http.MethodGet, "/admin/v1/workspaces/"+ws+"/members/"+userID+"/roles/explain", nil)
	var x server.RoleExplanationJSON
	if res.StatusCode != http.StatusOK || json.Unmarshal(body, &x) != nil {
		t.Fatalf("explain: %d %s", res.StatusCode, body)
	}
	lines := strings.Split(strings.TrimSpace(table), "\n")[1:]
	header := tableColumns.Split(lines[0], -1)
	if len(lines)-1 != len(x.Environments) {
		t.Fatalf("the guide's table has %d environments, explain %d: %s", len(lines)-1, len(x.Environments), body)
	}
	for i, line := range lines[1:] {
		row := map[string]string{}
		for j, v := range tableColumns.Split(line, -1) {
			if j < len(header) {
				row[header[j]] = v
			}
		}
		e := x.Environments[i]
		because := fmt.Sprintf("rule %d, group %q", e.Rule, e.Group)
		if row["ENVIRONMENT"] != e.Environment || row["ROLE"] != e.Role || row["SOURCE"] != e.Source ||
			row["EVENT"] != e.EventType || (e.Source == "rule" && row["BECAUSE"] != because) {
			t.Errorf("the guide shows %v; explain answers %+v", row, e)
		}
	}
}
