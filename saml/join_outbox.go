package saml

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/storage"
)

// The demo outbox page (demo mode only): with no SMTP server configured,
// join emails land in the store's outbox, and this page shows the newest
// ones so a newcomer can open the link. It shows every recipient's mail to
// anyone, which is acceptable only because demo mode lets anyone sign in as
// anyone through the demo IdP anyway. Outside demo mode the outbox is
// listed by the admin API only (GET /admin/v1/outbox).

const demoOutboxSize = 20

// outboxMail is one message on the demo outbox page.
type outboxMail struct {
	ID      string
	To      string
	Subject string
	Time    time.Time
	Status  string
	Error   string
	Text    string
	// Attempts are the delivery attempts, oldest first.
	Attempts []storage.MailAttempt
	// Links are the URLs in the text that point at this service.
	Links []string
}

type outboxPage struct {
	Mails []outboxMail
}

var urlPattern = regexp.MustCompile(`https?://[^\s<>"]+`)

// handleDemoOutbox answers GET /demo/outbox.
func (s *Service) handleDemoOutbox(c echo.Context) error {
	ms, err := s.cfg.Store.ListMail(c.Request().Context(), demoOutboxSize)
	if err != nil {
		return fmt.Errorf("demo outbox: list mail: %w", err)
	}
	base := s.urlString("/")
	page := outboxPage{Mails: make([]outboxMail, 0, len(ms))}
	for _, m := range ms {
		om := outboxMail{ID: m.ID, To: m.To, Subject: m.Subject, Time: m.Time.UTC(), Status: m.Status, Error: m.Error, Text: m.Text,
			Attempts: m.Attempts}
		for _, u := range urlPattern.FindAllString(m.Text, -1) {
			if strings.HasPrefix(u, base) {
				om.Links = append(om.Links, u)
			}
		}
		page.Mails = append(page.Mails, om)
	}
	return s.render(c, http.StatusOK, "join_outbox", page)
}
