package conformance

import (
	"fmt"
	"slices"
	"testing"

	"github.com/scimjit/scimjit/storage"
)

func wsIDs(ws []storage.Workspace) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.ID
	}
	return out
}

// wantDomain checks which workspaces WorkspacesByEmailDomain finds, in order.
func wantDomain(t *testing.T, s storage.Store, domain string, want ...string) {
	t.Helper()
	got, err := s.WorkspacesByEmailDomain(ctxT(t), domain)
	must(t, err, "WorkspacesByEmailDomain "+domain)
	if want == nil {
		want = []string{}
	}
	if ids := wsIDs(got); !slices.Equal(ids, want) {
		t.Errorf("WorkspacesByEmailDomain(%q) = %v, want %v", domain, ids, want)
	}
}

func setDomains(t *testing.T, s storage.Store, ws string, domains ...string) {
	t.Helper()
	_, err := s.UpdateWorkspace(ctxT(t), ws, func(w *storage.Workspace) error {
		w.Settings.Login.EmailDomains = domains
		return nil
	})
	must(t, err, "set domains of "+ws)
}

// testEmailDomains: the domain lookup follows create, update and delete of
// the workspaces that claim a domain; one domain may have several
// workspaces; the other workspace sees nothing of a domain it does not
// claim.
func testEmailDomains(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	// A workspace created with domains is found by them at once.
	const wsC = "conf-c"
	st := storage.DefaultSettings()
	st.Login.EmailDomains = []string{"created.example"}
	_, err := s.CreateWorkspace(ctx, storage.Workspace{ID: wsC, Name: "C", Settings: st})
	must(t, err, "create C")
	wantDomain(t, s, "created.example", wsC)
	must(t, s.DeleteWorkspace(ctx, wsC), "delete C")
	wantDomain(t, s, "created.example")

	setDomains(t, s, wsA, "example.com", "corp.example")
	got, err := s.GetWorkspace(ctx, wsA)
	must(t, err, "get A")
	if want := []string{"example.com", "corp.example"}; !slices.Equal(got.Settings.Login.EmailDomains, want) {
		t.Errorf("stored domains = %v, want %v", got.Settings.Login.EmailDomains, want)
	}
	wantDomain(t, s, "example.com", wsA)
	wantDomain(t, s, "corp.example", wsA)
	// Isolation: B claims nothing, and neither a prefix, a suffix nor
	// another case of a domain matches.
	wantDomain(t, s, "example.co")
	wantDomain(t, s, "ample.com")
	wantDomain(t, s, "EXAMPLE.COM")
	wantDomain(t, s, "other.example")
	wantDomain(t, s, "")

	// Two workspaces claim one domain: both, ordered by id.
	setDomains(t, s, wsB, "example.com")
	wantDomain(t, s, "example.com", wsA, wsB)

	// A domain taken out of the setting is no longer found; one kept is.
	setDomains(t, s, wsA, "corp.example", "new.example")
	wantDomain(t, s, "example.com", wsB)
	wantDomain(t, s, "corp.example", wsA)
	wantDomain(t, s, "new.example", wsA)

	// Another setting's change keeps the domains.
	_, err = s.UpdateWorkspace(ctx, wsA, func(w *storage.Workspace) error { w.Name = "A2"; return nil })
	must(t, err, "rename A")
	wantDomain(t, s, "new.example", wsA)

	// Deleting a workspace removes its claims, and a re-created one with
	// the same id claims only what it lists now.
	must(t, s.DeleteWorkspace(ctx, wsB), "delete B")
	wantDomain(t, s, "example.com")
	st2 := storage.DefaultSettings()
	st2.Login.EmailDomains = []string{"again.example"}
	_, err = s.CreateWorkspace(ctx, storage.Workspace{ID: wsB, Name: "B", Settings: st2})
	must(t, err, "re-create B")
	wantDomain(t, s, "example.com")
	wantDomain(t, s, "again.example", wsB)
	wantDomain(t, s, "new.example", wsA)

	// Concurrent updates of one workspace: the last record's domains are
	// found, and no other.
	errs := parallel(8, func(i int) error {
		_, err := s.UpdateWorkspace(ctx, wsA, func(w *storage.Workspace) error {
			w.Settings.Login.EmailDomains = []string{fmt.Sprintf("d%d.example", i)}
			return nil
		})
		return err
	})
	for _, err := range errs {
		must(t, err, "concurrent update")
	}
	final, err := s.GetWorkspace(ctx, wsA)
	must(t, err, "get A")
	for i := range 8 {
		d := fmt.Sprintf("d%d.example", i)
		if slices.Contains(final.Settings.Login.EmailDomains, d) {
			wantDomain(t, s, d, wsA)
		} else {
			wantDomain(t, s, d)
		}
	}
}
