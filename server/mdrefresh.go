package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/scimjit/scimjit/saml"
	"github.com/scimjit/scimjit/server/reqctx"
	"github.com/scimjit/scimjit/storage"
)

// Refresh of idp.metadataURL. The metadata is downloaded when the URL is
// set (admin API, CLI, bootstrap file), then again on a schedule by one
// background loop per server process (refreshMetadataLoop), and on demand
// (POST /admin/v1/workspaces/{id}/refresh-metadata). Every download's
// outcome is stored on the workspace (storage.MetadataRefresh), so every
// process sees a refresh made by another; MetadataXML only ever holds a
// copy that downloaded and validated (the last good copy).
const (
	// DefaultMetadataRefreshInterval is how often metadata is downloaded
	// again when it does not ask for sooner (validUntil, cacheDuration).
	DefaultMetadataRefreshInterval = 12 * time.Hour
	// DefaultMetadataCheckInterval is how often the loop looks for
	// workspaces whose refresh is due.
	DefaultMetadataCheckInterval = time.Minute
	// metadataRetryInterval is the wait after a failed download (or the
	// refresh interval when that is shorter).
	metadataRetryInterval = 5 * time.Minute
	// metadataLockTTL bounds how long one process holds a due refresh
	// before another may take it over (the holder died mid-download).
	metadataLockTTL = 2 * metadataTimeout
)

// nextMetadataDue is when a copy downloaded at now is due again: after
// interval, or at refreshBy (its validUntil or cacheDuration) when that is
// sooner, but never sooner than a minute (or interval when shorter) from
// now, so that metadata that asks for constant refreshes does not get
// them.
func nextMetadataDue(refreshBy, now time.Time, interval time.Duration) time.Time {
	due := now.Add(interval)
	if !refreshBy.IsZero() && refreshBy.Before(due) {
		due = refreshBy
		if floor := now.Add(min(interval, time.Minute)); due.Before(floor) {
			due = floor
		}
	}
	return due
}

// metadataFailed is the refresh state after a failed attempt at now.
func metadataFailed(reason string, now time.Time, interval time.Duration) storage.MetadataRefresh {
	return storage.MetadataRefresh{CheckedAt: now, LastError: reason, NextDue: now.Add(min(interval, metadataRetryInterval))}
}

// resolveMetadataURL downloads the patch's idp.metadataURL, when it has a
// non-empty one, into idp.metadataXML and sets the refresh state the patch
// stores (IdPPatch.refresh). With strict (admin API, CLI) a failed download
// is a ValidationError and the downloaded copy is validated with the rest
// of the settings (normalizeSettings). Without strict (bootstrap file, at
// startup) a failed or unusable download is only recorded in the refresh
// state: the workspace keeps its current metadata, if any, and is
// refreshed later, so one unreachable IdP never stops the server.
func resolveMetadataURL(ctx context.Context, client *http.Client, log *slog.Logger, p *SettingsPatch,
	interval time.Duration, strict bool) error {
	if p == nil || p.IdP == nil || p.IdP.MetadataURL == nil || *p.IdP.MetadataURL == "" {
		return nil
	}
	i := p.IdP
	if i.MetadataXML != nil {
		return &ValidationError{Problems: []string{"settings.idp: give metadataXML or metadataURL, not both"}}
	}
	now := time.Now().UTC()
	xml, err := fetchMetadata(ctx, client, log, *i.MetadataURL)
	var reason string
	switch {
	case err != nil && strict:
		return &ValidationError{Problems: []string{"settings.idp.metadataURL: could not download the metadata: " + err.Error()}}
	case err != nil:
		reason = err.Error()
	case !strict:
		if _, verr := saml.ValidateIdPMetadata(xml, now); verr != nil {
			reason = "the downloaded metadata is not usable: " + verr.Error()
		}
	}
	if reason != "" {
		log.WarnContext(ctx, "idp metadata not downloaded; the workspace keeps its current metadata and is retried",
			"reason", reason)
		st := metadataFailed(reason, now, interval)
		i.refresh = &st
		return nil
	}
	facts, _ := saml.InspectIdPMetadata(xml, "", now) // invalid metadata is refused by normalizeSettings
	i.MetadataXML = &xml
	i.refresh = &storage.MetadataRefresh{FetchedAt: now, CheckedAt: now,
		NextDue: nextMetadataDue(facts.RefreshBy, now, interval)}
	return nil
}

// errNoMetadataURL: a refresh of a workspace without idp.metadataURL.
var errNoMetadataURL = errors.New("the workspace has no idp.metadataURL")

// errMetadataURLChanged: idp.metadataURL changed while a refresh
// downloaded the old one (the change downloaded its own copy).
var errMetadataURLChanged = errors.New("idp.metadataURL changed during the refresh")

// MetadataRefreshReport is the outcome of one refresh of a workspace's
// idp.metadataURL (the admin API's refresh-metadata answer).
type MetadataRefreshReport struct {
	Workspace string `json:"workspace"`
	// OK tells whether the download succeeded and the copy was usable;
	// Error says why not (the workspace keeps its last good copy).
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// MetadataChanged tells whether the stored metadata changed;
	// CertificatesChanged whether its set of signing certificates did.
	MetadataChanged     bool `json:"metadataChanged"`
	CertificatesChanged bool `json:"certificatesChanged"`
	// SigningCertificates are the SHA-256 fingerprints of the signing
	// certificates in use after the refresh; PreviousSigningCertificates
	// those before it.
	SigningCertificates         []string  `json:"signingCertificates"`
	PreviousSigningCertificates []string  `json:"previousSigningCertificates"`
	FetchedAt                   time.Time `json:"fetchedAt,omitzero"`
	CheckedAt                   time.Time `json:"checkedAt"`
	NextDue                     time.Time `json:"nextDue"`
}

// signingCertificates returns the fingerprints of the signing certificates
// of stored metadata (none without metadata).
func signingCertificates(idp storage.IdPSettings, now time.Time) []string {
	if idp.MetadataXML == "" {
		return []string{}
	}
	f, err := saml.InspectIdPMetadata(idp.MetadataXML, idp.EntityID, now)
	if err != nil || f.SigningCertificates == nil {
		return []string{}
	}
	return f.SigningCertificates
}

// refreshMetadata downloads the workspace's idp.metadataURL now and stores
// the outcome: on success the new copy (when its entity ID is the
// workspace's) and the next due time, on failure only the error and a
// retry time (the last good copy stays). A change of the signing
// certificates is recorded as an "idp.certificates_changed" event with
// the fingerprints before and after. errNoMetadataURL when the workspace
// has no URL; storage.ErrNotFound when it does not exist.
func (s *Server) refreshMetadata(ctx context.Context, id string) (MetadataRefreshReport, error) {
	ws, err := s.store.GetWorkspace(ctx, id)
	if err != nil {
		return MetadataRefreshReport{}, err
	}
	url := ws.Settings.IdP.MetadataURL
	if url == "" {
		return MetadataRefreshReport{}, errNoMetadataURL
	}
	ctx = reqctx.WithWorkspace(ctx, id) // the logger adds it to every record
	log := s.log
	now := time.Now().UTC()
	interval := s.cfg.MetadataRefreshInterval
	var (
		xml, entityID, reason string
		st                    storage.MetadataRefresh
	)
	xml, err = fetchMetadata(ctx, s.metadataClient, log, url)
	if err != nil {
		reason = err.Error()
	} else if entityID, err = saml.ValidateIdPMetadata(xml, now); err != nil {
		reason = "the downloaded metadata is not usable: " + err.Error()
	} else if want := ws.Settings.IdP.EntityID; want != "" && entityID != want {
		reason = fmt.Sprintf("the downloaded metadata's entityID %q is not the workspace's idp.entityID %q", entityID, want)
	}
	if reason == "" {
		facts, _ := saml.InspectIdPMetadata(xml, entityID, now) // validated above
		st = storage.MetadataRefresh{FetchedAt: now, CheckedAt: now, NextDue: nextMetadataDue(facts.RefreshBy, now, interval)}
	} else {
		st = metadataFailed(reason, now, interval)
		st.FetchedAt = ws.Settings.IdP.MetadataRefresh.FetchedAt
	}
	var before storage.IdPSettings
	ws, err = s.store.UpdateWorkspace(ctx, id, func(w *storage.Workspace) error {
		if w.Settings.IdP.MetadataURL != url {
			return errNoChange // the URL changed meanwhile: that change downloaded its own copy
		}
		before = w.Settings.IdP
		w.Settings.IdP.MetadataRefresh = st
		if reason == "" {
			w.Settings.IdP.MetadataXML = xml
			w.Settings.IdP.EntityID = entityID
		}
		return nil
	})
	if errors.Is(err, errNoChange) {
		return MetadataRefreshReport{}, errMetadataURLChanged
	}
	if err != nil {
		return MetadataRefreshReport{}, fmt.Errorf("store metadata refresh: %w", err)
	}
	r := MetadataRefreshReport{Workspace: id, OK: reason == "", Error: reason,
		MetadataChanged:             ws.Settings.IdP.MetadataXML != before.MetadataXML,
		PreviousSigningCertificates: signingCertificates(before, now),
		SigningCertificates:         signingCertificates(ws.Settings.IdP, now),
		FetchedAt:                   st.FetchedAt, CheckedAt: st.CheckedAt, NextDue: st.NextDue}
	r.CertificatesChanged = !slices.Equal(r.SigningCertificates, r.PreviousSigningCertificates)
	if r.CertificatesChanged {
		appendAdminEvent(ctx, s.store, log, id, "idp.certificates_changed", map[string]string{
			"before": strings.Join(r.PreviousSigningCertificates, ","),
			"after":  strings.Join(r.SigningCertificates, ","),
		})
	}
	if r.OK {
		log.InfoContext(ctx, "idp metadata refreshed", "changed", r.MetadataChanged,
			"certificates_changed", r.CertificatesChanged, "next_due", r.NextDue)
	} else {
		log.WarnContext(ctx, "idp metadata refresh failed; keeping the last good copy", "reason", reason,
			"next_due", r.NextDue)
	}
	return r, nil
}

// refreshMetadataLoop refreshes due metadata every
// Config.MetadataCheckInterval until ctx ends.
func (s *Server) refreshMetadataLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.MetadataCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.refreshDueMetadata(ctx)
		}
	}
}

// refreshDueMetadata refreshes every workspace whose idp.metadataURL is
// due. It scans all workspaces, which is fine for the hundreds a
// deployment has; an index of due times would replace the scan for many
// more. Of the processes on one store only the one that consumes the due
// time's once-key (ConsumeOnce, the replay cache's primitive) downloads;
// the key expires after metadataLockTTL so that another process takes
// over from one that died mid-download.
func (s *Server) refreshDueMetadata(ctx context.Context) {
	list, err := s.store.ListWorkspaces(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "idp metadata refresh: list workspaces", "err", err)
		return
	}
	now := time.Now()
	for _, ws := range list {
		idp := ws.Settings.IdP
		if idp.MetadataURL == "" || now.Before(idp.MetadataRefresh.NextDue) {
			continue
		}
		key := "idp-metadata-refresh:" + strconv.FormatInt(idp.MetadataRefresh.NextDue.UnixMicro(), 10)
		mine, err := s.store.ConsumeOnce(ctx, ws.ID, key, now.Add(metadataLockTTL))
		if err != nil {
			s.log.WarnContext(reqctx.WithWorkspace(ctx, ws.ID), "idp metadata refresh: lock", "err", err)
			continue
		}
		if !mine {
			continue // another process refreshes it
		}
		if _, err := s.refreshMetadata(ctx, ws.ID); err != nil && !errors.Is(err, storage.ErrNotFound) &&
			!errors.Is(err, errNoMetadataURL) && !errors.Is(err, errMetadataURLChanged) {
			s.log.WarnContext(reqctx.WithWorkspace(ctx, ws.ID), "idp metadata refresh", "err", err)
		}
	}
}

// refreshMetadataNow is POST /admin/v1/workspaces/{id}/refresh-metadata:
// it downloads the workspace's idp.metadataURL now and reports what
// changed (200 also when the download failed: ok false and the reason;
// the workspace keeps its last good copy). 409 when the workspace has no
// metadataURL.
func (s *Server) refreshMetadataNow(c echo.Context) error {
	id, err := workspaceParam(c)
	if err != nil {
		return err
	}
	ctx := reqctxWithWorkspace(c, id)
	r, err := s.refreshMetadata(ctx, id)
	switch {
	case errors.Is(err, errNoMetadataURL):
		return &apiError{Status: http.StatusConflict, Message: "the workspace has no settings.idp.metadataURL to refresh from"}
	case errors.Is(err, errMetadataURLChanged):
		return &apiError{Status: http.StatusConflict, Message: "settings.idp.metadataURL changed during the refresh; try again"}
	}
	if err != nil {
		return storeError(err, "workspace")
	}
	s.adminEvent(c, id, "admin.idp_metadata.refreshed", map[string]string{"ok": strconv.FormatBool(r.OK)})
	return c.JSON(http.StatusOK, r)
}
