package saml

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	texttemplate "text/template"
	"time"

	"github.com/scimjit/scimjit/storage"
)

// joinMailData fills the join email templates.
type joinMailData struct {
	Name      string
	Email     string
	Workspace workspaceView
	Link      string
	Expires   string
	Minutes   int
}

var joinMailText = texttemplate.Must(texttemplate.New("text").Parse(`Hello {{.Name}},

someone signed in to the workspace "{{.Workspace.Name}}" ({{.Workspace.ID}}) on scimjit as {{.Email}}. To join that workspace with your existing account, open this link and confirm:

{{.Link}}

The link works once and expires in {{.Minutes}} minutes ({{.Expires}}).

If this was not you, ignore this email: nothing changes until the link is confirmed.
`))

var joinMailHTML = htmltemplate.Must(htmltemplate.New("html").Parse(`<!doctype html>
<html><body style="font-family:sans-serif">
<p>Hello {{.Name}},</p>
<p>someone signed in to the workspace <strong>{{.Workspace.Name}}</strong> ({{.Workspace.ID}}) on scimjit as {{.Email}}. To join that workspace with your existing account, open this link and confirm:</p>
<p><a href="{{.Link}}">Join {{.Workspace.Name}}</a></p>
<p>The link works once and expires in {{.Minutes}} minutes ({{.Expires}}).</p>
<p>If this was not you, ignore this email: nothing changes until the link is confirmed.</p>
</body></html>
`))

// joinMail composes the message carrying a join link. It goes to the
// account's own address, never to one taken from the new assertion (R8).
func joinMail(link string, ws storage.Workspace, acct storage.Account, expires time.Time) (storage.Mail, error) {
	d := joinMailData{
		Name:      acct.FullName,
		Email:     acct.Email,
		Workspace: wsView(ws),
		Link:      link,
		Expires:   expires.UTC().Format("2006-01-02 15:04 MST"),
		Minutes:   int(time.Until(expires).Round(time.Minute) / time.Minute),
	}
	if d.Name == "" {
		d.Name = acct.Email
	}
	var text, html bytes.Buffer
	if err := joinMailText.Execute(&text, d); err != nil {
		return storage.Mail{}, fmt.Errorf("join: mail text: %w", err)
	}
	if err := joinMailHTML.Execute(&html, d); err != nil {
		return storage.Mail{}, fmt.Errorf("join: mail html: %w", err)
	}
	return storage.Mail{
		To:      acct.Email,
		Subject: fmt.Sprintf("Confirm joining %s on scimjit", d.Workspace.Name),
		Text:    text.String(),
		HTML:    html.String(),
		Time:    time.Now().UTC(),
		Expires: expires,
	}, nil
}
