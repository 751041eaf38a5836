package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Every backend returns exactly these (possibly wrapped with
// %w), so callers test them with errors.Is.
var (
	// ErrNotFound: the record does not exist (or belongs to another workspace).
	ErrNotFound = errors.New("storage: not found")
	// ErrAlreadyExists: a uniqueness constraint was violated. Backends wrap
	// it in a *ConflictError that names the field.
	ErrAlreadyExists = errors.New("storage: already exists")
	// ErrPreconditionFailed: an expected version (If-Match) did not match.
	ErrPreconditionFailed = errors.New("storage: precondition failed")
	// ErrInvalidReference: a record refers to another that does not exist
	// (a group member that is not a user of the workspace).
	ErrInvalidReference = errors.New("storage: invalid reference")
	// ErrConflictRetries: an optimistic update lost the race too many times.
	ErrConflictRetries = errors.New("storage: too much contention, retry later")
	// ErrUnavailable: the backend cannot be reached. Backends wrap their
	// network errors in it so handlers can answer 503.
	ErrUnavailable = errors.New("storage: unavailable")
	// ErrNotIndexed: the workspace's member filter indexes, or its name
	// index, were never built (its members were written by an earlier
	// version); `scimjit check --fix` builds them. ListUsersFiltered and a
	// FindUsers by UserByName answer it rather than an incomplete list.
	ErrNotIndexed = errors.New("storage: member filter or name index not built")
)

// ConflictError tells which unique field collided. errors.Is(err,
// ErrAlreadyExists) is true for it.
type ConflictError struct {
	// Field is one of "userName", "externalId", "account", "displayName",
	// "email", "workspace".
	Field string
}

func (e *ConflictError) Error() string { return fmt.Sprintf("storage: %s already exists", e.Field) }

// Is makes errors.Is(err, ErrAlreadyExists) true.
func (e *ConflictError) Is(target error) bool { return target == ErrAlreadyExists }

// System roles. Role names are case-sensitive (R4).
const (
	RoleAdmin    = "Admin"
	RoleAnalyst  = "Analyst"
	RoleOperator = "Operator"
	RoleNoAccess = "NoAccess"
)

// SystemRoles lists the built-in roles every workspace has.
var SystemRoles = []string{RoleAdmin, RoleAnalyst, RoleOperator, RoleNoAccess}

// Settings values.
const (
	ExistingAccountVerify = "verify"
	ExistingAccountAuto   = "auto"
	RoleSyncOnCreate      = "onCreate"
	RoleSyncEveryLogin    = "everyLogin"
	UnknownRoleReject     = "reject"
	UnknownRoleDefault    = "default"

	SourceJIT   = "jit"
	SourceSCIM  = "scim"
	SourceAdmin = "admin"
)

// Workspace is a tenant: its id is a slug (^[a-z0-9][a-z0-9-]{0,62}$).
type Workspace struct {
	ID        string
	Name      string
	Settings  Settings
	CreatedAt time.Time
	UpdatedAt time.Time
	// Version is bumped on every update; the SAML layer uses it to
	// invalidate its cached service provider.
	Version int64
}

// Settings are a workspace's provisioning and SSO settings (DESIGN §3).
type Settings struct {
	JIT         JITSettings
	CustomRoles []string
	IdP         IdPSettings
	Roles       RoleSettings
	Login       LoginSettings
}

// LoginSettings control how people find the workspace's sign-in.
type LoginSettings struct {
	// EmailDomains are the lower-case ASCII (IDNA) email domains whose
	// people sign in through this workspace: the home page sends an email
	// address of one of them to the workspace's login. Several workspaces
	// may claim one domain (the person then chooses).
	EmailDomains []string
}

// JITSettings control just-in-time provisioning at SAML login.
type JITSettings struct {
	Enabled bool
	// ExistingAccount is ExistingAccountVerify (default) or ExistingAccountAuto.
	ExistingAccount string
	// DefaultRole is the role for a missing workato_role* attribute (default Operator).
	DefaultRole string
	// RoleSync is RoleSyncOnCreate (default) or RoleSyncEveryLogin.
	RoleSync string
	// UnknownRole is UnknownRoleReject (default) or UnknownRoleDefault.
	UnknownRole string
}

// IdPSettings describe the workspace's SAML identity provider.
type IdPSettings struct {
	// MetadataXML is the IdP's SAML metadata as uploaded by the admin.
	MetadataXML string
	// EntityID is the IdP's entity ID (derived from the metadata when empty).
	EntityID string
	// AllowIdPInitiated accepts unsolicited responses (Okta tiles).
	AllowIdPInitiated bool

	// AllowSHA1 accepts IdP signatures made with a SHA-1 based algorithm
	// (rsa-sha1 signature method or sha1 digest), refused by default: an
	// opt-in for a legacy IdP that cannot sign with SHA-256.
	AllowSHA1 bool
	// MetadataURL, when not empty, is where MetadataXML is downloaded
	// from and refreshed on a schedule; MetadataRefresh is the state of
	// those downloads, shared by every process through the store.
	MetadataURL     string
	MetadataRefresh MetadataRefresh
}

// MetadataRefresh is the state of the downloads of IdPSettings.MetadataURL.
// MetadataXML always holds the last copy that downloaded and validated
// (the last good copy): a failed download only records LastError.
type MetadataRefresh struct {
	// FetchedAt is the time of the last successful download.
	FetchedAt time.Time
	// CheckedAt is the time of the last attempt, successful or not.
	CheckedAt time.Time
	// LastError is why the last attempt failed (a short public reason);
	// empty after a success.
	LastError string
	// NextDue is when the next download is due.
	NextDue time.Time
}

// DefaultSettings returns the settings a new workspace starts with.
func DefaultSettings() Settings {
	return Settings{JIT: JITSettings{
		Enabled:         false,
		ExistingAccount: ExistingAccountVerify,
		DefaultRole:     RoleOperator,
		RoleSync:        RoleSyncOnCreate,
		UnknownRole:     UnknownRoleReject,
	}}
}

// ValidRole reports whether role is a system role or one of the workspace's
// custom roles. The comparison is case-sensitive (R4).
func (s Settings) ValidRole(role string) bool {
	for _, r := range SystemRoles {
		if r == role {
			return true
		}
	}
	for _, r := range s.CustomRoles {
		if r == role {
			return true
		}
	}
	return false
}

// SCIMToken is a workspace's SCIM bearer token. Only a SHA-256 hash of the
// secret is stored.
type SCIMToken struct {
	ID        string
	Name      string
	Hash      []byte
	CreatedAt time.Time
	// LastUsed is the latest time TouchSCIMToken recorded (zero: never);
	// CreateSCIMToken ignores it.
	LastUsed time.Time
}

// Account is a person, identified by an email that is unique across the
// service (compared case-insensitively).
type Account struct {
	ID string
	// Email as sent; uniqueness uses FoldKey(Email).
	Email    string
	FullName string
	// Source is SourceJIT or SourceSCIM.
	Source string
	// OriginWorkspace is the workspace whose JIT login or SCIM call created
	// the account. A membership there is verified from the start (R7, R9).
	OriginWorkspace string
	CreatedAt       time.Time
}

// Roles holds a membership's role per environment.
type Roles struct {
	Dev  string `json:"dev"`
	Test string `json:"test"`
	Prod string `json:"prod"`
}

// User is a membership of an account in a workspace: the workspace's SCIM
// User resource.
type User struct {
	ID          string // assigned by CreateUser when empty (UUID)
	WorkspaceID string
	AccountID   string
	// UserName is stored as sent; unique per workspace in its folded form
	// (FoldKey: case-insensitive, Unicode NFC).
	UserName string
	// ExternalID is the IdP's id for the user, indexed (exact match) but
	// not unique: RFC 7643 §3.1 leaves its uniqueness to the client.
	ExternalID string
	// Emails are the email values, indexed in folded form (FoldKey) for
	// `emails.value eq` lookups (not unique).
	Emails   []string
	Active   bool
	Verified bool
	Source   string
	// Roles are the membership's roles, as sign-ins and /api/v1/me see
	// them: for a SCIM membership in a workspace with group rules,
	// Settings.MemberRoles of ExplicitRoles and its SCIM groups.
	Roles Roles
	// ExplicitRoles, when not nil, are the workato_role* values a SCIM
	// client sent ("" where it sent none): what Roles falls back to where
	// no group rule decides, and what wins over a rule unless the
	// workspace's group rules win. nil (memberships written by a sign-in
	// or an admin, or before explicit values were kept apart) means equal
	// to Roles (Explicit).
	ExplicitRoles *Roles
	// RoleSchema is the schema URN under which the SCIM client that
	// created the user sent its roles, when that is not the default one
	// (Entra's custom-attribute form); responses use the same URN. Empty
	// for every other user.
	RoleSchema string
	// Attributes holds the rest of the SCIM representation (name,
	// displayName, emails with types, enterprise extension, ...) as JSON-shaped
	// values. It never holds id, meta, schemas, groups, password, userName,
	// externalId, active or the role extension: those are the typed fields.
	Attributes map[string]any
	Created    time.Time
	Modified   time.Time
	// Version starts at 1 and is bumped on every write (ETag W/"<Version>").
	Version int64
	// Op identifies the write that produced this version: as its caller
	// named it (the SCIM handler uses a digest of the request), a new id
	// the store chose, or "" for a user never written since its creation
	// without one. A client that re-sends a write whose answer it never
	// got finds its own earlier effect by comparing Op instead of applying
	// the write twice.
	Op string
}

// FullName is the person's name as the membership's SCIM attributes give
// it (FullName of Attributes).
func (u User) FullName() string {
	return FullName(u.Attributes)
}

// FullName is a person's full name from SCIM user attributes: the
// formatted name, else given and family name, else the displayName.
func FullName(attrs map[string]any) string {
	if n, ok := attrs["name"].(map[string]any); ok {
		if f, _ := n["formatted"].(string); f != "" {
			return f
		}
		g, _ := n["givenName"].(string)
		f, _ := n["familyName"].(string)
		if s := strings.TrimSpace(g + " " + f); s != "" {
			return s
		}
	}
	d, _ := attrs["displayName"].(string)
	return d
}

// Explicit returns the membership's explicit role values (ExplicitRoles,
// or Roles when nil).
func (u User) Explicit() Roles {
	if u.ExplicitRoles != nil {
		return *u.ExplicitRoles
	}
	return u.Roles
}

// Group is a workspace's SCIM Group.
type Group struct {
	ID          string
	WorkspaceID string
	// DisplayName is unique per workspace, case-insensitively.
	DisplayName string
	ExternalID  string
	// Members are user ids of the workspace, in no particular order.
	Members    []string
	Attributes map[string]any
	Created    time.Time
	Modified   time.Time
	Version    int64
	// Op identifies the write that produced this version (see User.Op).
	Op string
}

// GroupRef names a group without its members: what a user's `groups`
// attribute shows (RFC 7643 §4.1.2).
type GroupRef struct {
	ID          string
	DisplayName string
	// ExternalID is the group's externalId (group rules match it too).
	ExternalID string
}

// GroupChange is an atomic change to a group. Member changes are applied as
// deltas so that concurrent changes never lose each other (R15). Order:
// ReplaceMembers (when non-nil), then RemoveMembers, then AddMembers.
type GroupChange struct {
	// IfVersion, when non-zero, must equal the group's version (else
	// ErrPreconditionFailed).
	IfVersion   int64
	DisplayName *string
	ExternalID  *string
	// Attributes, when non-nil, replaces the group's extra attributes.
	Attributes     map[string]any
	ReplaceMembers *[]string
	RemoveMembers  []string
	AddMembers     []string
	// Events are appended to the workspace's events with the change, in
	// the same atomic step, and only when it is applied.
	Events []Event
	// Op, when not empty, identifies this change and is stored as the
	// group's Op. When the group's Op already equals it, the change was
	// applied before (a re-sent request): ChangeGroup changes nothing, does
	// not check IfVersion, and returns the group as it is.
	Op string
	// OmitMembers, when true, makes ChangeGroup return the group without
	// reading its members (Members is then nil), so that a change whose
	// response does not show members costs the same for any group size.
	OmitMembers bool
}

// RolesChangedEvent is the type of the event recorded when a change to a
// member's SCIM groups changes its roles. Detail: cause (the type of the
// change's event, e.g. "scim.group.updated"), groupId and displayName of
// the group changed, "from" and "to" ("dev=A,test=B,prod=C"), and per
// environment "<env>.source" (RoleSource*) with, for a rule,
// "<env>.rule" (its 1-based position), "<env>.group" (the rule's group)
// and "<env>.scimGroup" and "<env>.scimGroupName" (the id and displayName
// of the SCIM group it matched).
const RolesChangedEvent = "membership.roles_changed"

// UserIndex names an indexed user attribute.
type UserIndex string

// GroupIndex names an indexed group attribute.
type GroupIndex string

// Indexed attributes (DESIGN §2).
const (
	UserByUserName   UserIndex  = "userName"   // case-insensitive
	UserByExternalID UserIndex  = "externalId" // exact
	UserByEmail      UserIndex  = "email"      // case-insensitive
	GroupByName      GroupIndex = "displayName"
	GroupByExternal  GroupIndex = "externalId"
	GroupByMember    GroupIndex = "member" // groups that have the user id as member
)

// UserByID finds the user with that id (FindUsers): zero or one user.
const UserByID UserIndex = "id"

// UserByName finds the users whose full name (User.FullName) starts with
// the value, case-insensitively (FindUsers): at most NameSearchLimit, in
// name order.
const UserByName UserIndex = "name"

// NameSearchLimit is the most users a FindUsers by UserByName returns.
const NameSearchLimit = 100

// FindOptions say what FindUsers returns besides the users.
type FindOptions struct {
	// Groups: the found users' group references too (UsersFound.Groups).
	Groups bool
}

// UsersFound is what FindUsers found.
type UsersFound struct {
	Users []User
	// Groups maps the id of every user found to its groups (direct
	// memberships, ordered by group id), when FindOptions.Groups; else nil.
	Groups map[string][]GroupRef
	// More: a search by UserByName found more users than it returns
	// (NameSearchLimit).
	More bool
}

// UserFilter selects members for ListUsersFiltered. Every set field must
// match; the zero value selects every member.
type UserFilter struct {
	// Roles: the role a member must have in each environment whose value
	// is set (exact, case-sensitive).
	Roles Roles
	// Active, when set: only active (true) or deactivated (false) members.
	Active *bool
	// Verified, when set: only verified (true) or pending (false) members.
	Verified *bool
	// Source, when set: SourceJIT for members created by a JIT sign-in,
	// SourceSCIM for every other member.
	Source string
}

// Empty tells whether f selects every member.
func (f UserFilter) Empty() bool {
	return f.Roles == (Roles{}) && f.Active == nil && f.Verified == nil && f.Source == ""
}

// UserPage is one page of ListUsersFiltered.
type UserPage struct {
	// Users match the filter, in creation order.
	Users []User
	// Total counts the members that match. When TotalExact is false the
	// store stopped counting at its bound and Total is an estimate from
	// the members it examined.
	Total      int
	TotalExact bool
	// Next is the cursor of the page after this one; "" when there is
	// none. A page can hold fewer than limit users and still have a Next
	// (the store bounds what one call examines).
	Next string
}

// Event is one provisioning decision in a workspace's event stream.
type Event struct {
	ID   string // assigned by the store; ordered
	Time time.Time
	// Type, e.g. "scim.user.created", "jit.user.created", "login.refused",
	// "join.pending", "join.verified".
	Type      string
	Actor     string // "scim", "saml", "admin"
	UserID    string
	AccountID string
	// Detail carries non-secret context (reason, role, email).
	Detail map[string]string
}

// EventsFrom is the ListEvents cursor that starts at time t: an event id
// is "<Unix milliseconds of the append>-<sequence>", and this one sorts
// just before the first event of t's millisecond. A t at or before the
// Unix epoch gives "" (from the start).
func EventsFrom(t time.Time) string {
	ms := t.UnixMilli()
	if ms <= 0 {
		return ""
	}
	return strconv.FormatInt(ms-1, 10) + "-18446744073709551615"
}

// SCIMRequestError is a SCIM request answered with an error, as the
// workspace's provisioning summary keeps it: no body, no token, nothing
// personal beyond what the client got back in Detail.
type SCIMRequestError struct {
	Time time.Time
	// Method and Route are the HTTP method and the path template under
	// the workspace's SCIM base (e.g. "/Users/:id").
	Method string
	Route  string
	// Status, SCIMType and Detail are the error the client got.
	Status   int
	SCIMType string
	Detail   string
}

// SCIMActivity is a workspace's provisioning summary over the last
// SCIMActivityWindow.
type SCIMActivity struct {
	// Counts are requests by outcome: per SCIM change applied, the type
	// of the event it recorded ("scim.user.created", ...), and per error
	// answered "error.<status>" (e.g. "error.409").
	Counts map[string]int64
	// Errors are the last errors answered (at most MaxSCIMErrors), newest
	// first, of any age.
	Errors []SCIMRequestError
}

// SCIMActivityWindow is the window of SCIMActivity.Counts, and
// MaxSCIMErrors the number of errors it keeps.
const (
	SCIMActivityWindow = 24 * time.Hour
	MaxSCIMErrors      = 20
)

// JITUser is a just-in-time first sign-in as SignIns.CreateJITUser
// writes it: the new account, its membership in the workspace, the
// browser session and the events of the sign-in. Ids left empty are
// assigned; the result carries them.
type JITUser struct {
	Account Account
	User    User
	Session Session
	Events  []Event
}

// Received is what SignIns.ReceiveResponse read for a SAML response.
type Received struct {
	Workspace Workspace
	// Request is the temp value taken for the response (the request it
	// answers); nil when there was none.
	Request []byte
}

// Once names a key that ConsumeOnce records until Until.
type Once struct {
	Key   string
	Until time.Time
}

// Login is what SignIns.LoginLookup (or AcceptLogin) found for an email.
type Login struct {
	// Replayed tells that AcceptLogin's key was consumed before; nothing
	// else was read.
	Replayed bool
	Account  Account
	// Member tells whether the account has a membership in the workspace;
	// User is that membership.
	Member bool
	User   User
}

// Session is a signed-in browser session. Its key is chosen by the caller
// (a hash of the cookie value, never the cookie itself).
type Session struct {
	Key             string
	AccountID       string
	ActiveWorkspace string
	CreatedAt       time.Time
	ExpiresAt       time.Time

	// IdP is the SAML sign-in that started the session, kept only when
	// the workspace's IdP offers Single Logout (zero otherwise): what a
	// LogoutRequest to that IdP names.
	IdP IdPSession

	// Operator, when not empty, makes this an operator's console session
	// instead of a person's: the name of the admin token that opened it
	// (AccountID and ActiveWorkspace are then empty).
	Operator string
}

// IdPSession is the identity provider's side of a session: the workspace
// whose IdP signed the person in, and the assertion's NameID (value and
// format) and AuthnStatement SessionIndex.
type IdPSession struct {
	Workspace    string
	NameID       string
	NameIDFormat string
	SessionIndex string
}

// Verification is a pending join of an existing account to a workspace (R8,
// R10). Only a hash of the emailed token is stored.
type Verification struct {
	TokenHash   string // hex SHA-256 of the token
	AccountID   string
	WorkspaceID string
	Roles       Roles
	// RoleSources say why the sign-in that started the join decided
	// Roles (the "<env>.source", "<env>.rule", "<env>.group" and "groups"
	// event detail keys of that decision); the join.verified event carries
	// them, so the roles explain call names the rule behind a joined role.
	RoleSources map[string]string
	// UserID is set when a SCIM-created unverified membership exists (R9).
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Mail is a message in the outbox (demo mode, or a record of what was sent).
type Mail struct {
	ID      string
	To      string
	Subject string
	Text    string
	HTML    string
	Time    time.Time
	// Status is "queued", "sent" or "failed"; Error says why it failed.
	Status string
	Error  string
	// Expires: no delivery is attempted after it (the join link in the
	// message has expired). Zero: no limit.
	Expires time.Time
	// Attempts are the delivery attempts, oldest first.
	Attempts []MailAttempt
}

// MailAttempt is one delivery attempt of an outbox message.
type MailAttempt struct {
	Time time.Time
	// Outcome is "sent" or "failed"; Error says why it failed.
	Outcome string
	Error   string
}

// MembershipRef names one membership of an account.
type MembershipRef struct {
	WorkspaceID string
	UserID      string
}

// SPKey is one SAML service-provider key pair. Key is the private key as
// the caller sealed it (PEM, or encrypted: storage does not look inside);
// Certificate is the DER X.509 certificate.
type SPKey struct {
	Key         []byte
	Certificate []byte
	CreatedAt   time.Time
}

// SPKeys is the service provider's key pairs, shared by every process:
// Current signs and decrypts; Next (after a rotation, until promoted) is
// only published in SP metadata, so IdPs learn it before it is used;
// Previous (after a promotion) stays published and still decrypts, for
// IdPs that have not re-read the metadata yet. Next and Previous are nil
// when there is none.
type SPKeys struct {
	Current  SPKey
	Next     *SPKey
	Previous *SPKey
	// Version counts changes: 1 when created, +1 per update.
	Version int64
}

// Store is the whole persistent state of scimjit. Every method takes ctx
// first and the workspace id explicitly for workspace-owned data; a record of
// another workspace is never visible (ErrNotFound). Methods that enforce
// uniqueness do so atomically inside the backend, never check-then-write.
// Network failures are wrapped in ErrUnavailable.
type Store interface {
	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
	// Close releases the backend's connections (and what it started).
	Close() error

	// CreateWorkspace stores a new workspace; ErrAlreadyExists
	// (ConflictError{Field:"workspace"}) when the id is taken. Version=1.
	CreateWorkspace(ctx context.Context, ws Workspace) (Workspace, error)
	// GetWorkspace returns the workspace; ErrNotFound when unknown.
	GetWorkspace(ctx context.Context, id string) (Workspace, error)
	// ListWorkspaces returns all workspaces ordered by id.
	ListWorkspaces(ctx context.Context) ([]Workspace, error)
	// UpdateWorkspace reads, calls fn, and writes atomically; fn may run more
	// than once (optimistic retry). Version is bumped.
	UpdateWorkspace(ctx context.Context, id string, fn func(*Workspace) error) (Workspace, error)
	// DeleteWorkspace removes the workspace and everything it owns
	// (users, groups, tokens, events), and its memberships from accounts.
	DeleteWorkspace(ctx context.Context, id string) error
	// WorkspacesByEmailDomain returns the workspaces whose
	// Settings.Login.EmailDomains contain domain (exactly: callers pass
	// it lower-case), ordered by id; none is an empty slice, not an
	// error. The workspace records are the authority: a workspace is
	// returned only when its current record lists the domain, and a
	// created, updated or deleted workspace is found (or no longer
	// found) as soon as that call has returned.
	WorkspacesByEmailDomain(ctx context.Context, domain string) ([]Workspace, error)

	// CreateSCIMToken stores a token hash; several may be live at once.
	CreateSCIMToken(ctx context.Context, ws string, t SCIMToken) error
	// ListSCIMTokens returns the workspace's live tokens (with hashes).
	ListSCIMTokens(ctx context.Context, ws string) ([]SCIMToken, error)
	// RevokeSCIMToken deletes a token; ErrNotFound when unknown.
	RevokeSCIMToken(ctx context.Context, ws, id string) error
	// TouchSCIMToken records that the token authenticated a request at
	// at: its LastUsed becomes at unless it is later already (processes
	// record in any order, the latest time wins). ErrNotFound when the
	// token is unknown in ws (revoked meanwhile), and nothing is stored.
	TouchSCIMToken(ctx context.Context, ws, id string, at time.Time) error

	// GetOrCreateAccount returns the account with a.Email (compared folded:
	// FoldKey), creating it from a when none exists, atomically: of
	// concurrent calls for one email exactly one creates. created tells
	// which happened. A call re-sent with the same a (id and creation time)
	// finds the account it created.
	GetOrCreateAccount(ctx context.Context, a Account) (acct Account, created bool, err error)
	// GetAccount returns the account; ErrNotFound when unknown (or not
	// published yet).
	GetAccount(ctx context.Context, id string) (Account, error)
	// GetAccountByEmail returns the account whose email equals email
	// folded (FoldKey); ErrNotFound when none.
	GetAccountByEmail(ctx context.Context, email string) (Account, error)
	// AccountMemberships lists the workspaces where the account has a
	// membership (verified or not, active or not).
	AccountMemberships(ctx context.Context, accountID string) ([]MembershipRef, error)

	// CreateUser stores a new membership. ID is assigned when empty; Created,
	// Modified and Version (1) are set. ErrAlreadyExists with Field
	// "userName" (folded: FoldKey) or "account" (the account already has a
	// membership in this workspace); ErrNotFound when the workspace does not
	// exist. externalId is indexed but not unique (RFC 7643 §3.1). The
	// events, with their empty UserID and AccountID set to the
	// membership's, are appended to the workspace's stream in the same
	// atomic step, and only when the membership is created. A re-sent
	// create (same ID, nothing changed since) succeeds again, writing
	// nothing.
	CreateUser(ctx context.Context, ws string, u User, events ...Event) (User, error)
	// GetUser returns the membership with that id in ws; ErrNotFound when
	// unknown or of another workspace.
	GetUser(ctx context.Context, ws, id string) (User, error)
	// GetUserByAccount returns the account's membership in ws.
	GetUserByAccount(ctx context.Context, ws, accountID string) (User, error)
	// FindUsers returns the users whose indexed attribute equals value (an
	// index hit, no scan), in creation order: by UserByID, UserByUserName
	// and UserByExternalID (exact), or UserByEmail; or, by UserByName, the
	// users whose full name starts with value (case-insensitive), in name
	// order, at most NameSearchLimit (UsersFound.More says whether more
	// match); ErrNotIndexed when the workspace's
	// name index was never built (ListUsersFiltered's marker). With
	// opts.Groups it also returns each found user's group references, as
	// UserGroups would, from the same read.
	FindUsers(ctx context.Context, ws string, by UserIndex, value string, opts FindOptions) (UsersFound, error)
	// ListUsers returns users in creation order (stable across pages)
	// starting at the 0-based offset, and the total count. The cost does
	// not grow with offset beyond O(log n).
	ListUsers(ctx context.Context, ws string, offset, limit int) ([]User, int, error)
	// ListUsersFiltered returns up to limit members that match f, in
	// creation order, starting after the cursor after ("" = from the
	// first; else a UserPage.Next), read through per-value indexes that
	// every user write keeps in step with the records: the cost of a call
	// is bounded whatever the workspace's size and however deep the page
	// (a page may come back short, with a Next, when matches are sparse).
	// A single condition, or none, is counted exactly; a combination is
	// counted up to a bound, and estimated beyond it
	// (UserPage.TotalExact). ErrNotIndexed when f is
	// not empty and the workspace's filter indexes were never built.
	ListUsersFiltered(ctx context.Context, ws string, f UserFilter, after string, limit int) (UserPage, error)
	// UpdateUser reads, calls fn, and writes atomically with uniqueness
	// re-checked; fn may run more than once. ifVersion non-zero must match
	// (else ErrPreconditionFailed). Version is bumped and Modified set. fn
	// must not change ID, WorkspaceID or AccountID; it may set Op to name
	// the write (otherwise the store names it with a new id). A write whose
	// connection failed after it was sent may have been applied:
	// ErrUnavailable.
	//
	// fn may leave the roles to the store: when it sets ExplicitRoles and
	// leaves Roles zero, Roles become Settings.MemberRoles of ExplicitRoles
	// and the user's SCIM groups as they are when the write is applied (a
	// concurrent group change makes the write start again), so that user
	// writes and group changes end as some serial order of them would.
	UpdateUser(ctx context.Context, ws, id string, ifVersion int64, fn func(*User) error) (User, error)
	// DeleteUser removes the membership, its index entries and its group
	// memberships. ErrNotFound when unknown. ifVersion non-zero must equal
	// the user's version at the moment of deletion (else
	// ErrPreconditionFailed): the check and the delete are one atomic step.
	DeleteUser(ctx context.Context, ws, id string, ifVersion int64) error

	// CreateGroup stores a new group (ErrAlreadyExists Field
	// "displayName"; ErrInvalidReference for unknown member ids). Several
	// groups may share an externalId: the client keeps it unique (RFC 7643
	// §3.1); FindGroups by externalId returns every match. The events are
	// appended with the group, in the same atomic step.
	CreateGroup(ctx context.Context, ws string, g Group, events ...Event) (Group, error)
	// GetGroup returns the group with its members; ErrNotFound when
	// unknown or of another workspace.
	GetGroup(ctx context.Context, ws, id string) (Group, error)
	// FindGroups returns the groups whose indexed attribute equals value
	// (displayName case-insensitively, externalId exactly, or the groups
	// that have the user id as member), in creation order; an index hit.
	FindGroups(ctx context.Context, ws string, by GroupIndex, value string) ([]Group, error)
	// ListGroups returns groups in creation order from the 0-based offset,
	// and the total count, as ListUsers does for users.
	ListGroups(ctx context.Context, ws string, offset, limit int) ([]Group, int, error)
	// ChangeGroup applies ch atomically (single round trip, no retry).
	// ErrInvalidReference for an added member that is not a user of ws.
	ChangeGroup(ctx context.Context, ws, id string, ch GroupChange) (Group, error)
	// DeleteGroup removes the group, its index entries and its members'
	// reverse-index entries. ErrNotFound when unknown; ifVersion non-zero
	// must equal the group's version (else ErrPreconditionFailed), checked
	// atomically with the delete. The events are appended with the delete,
	// in the same atomic step.
	//
	// CreateGroup, ChangeGroup and DeleteGroup re-evaluate, in the same
	// atomic step, the roles of every member whose groups they change (a
	// renamed group or a new externalId changes the groups of all its
	// members) where the workspace has group rules: each such member's
	// Roles become Settings.MemberRoles of its ExplicitRoles and its SCIM
	// groups after the change, its Version is bumped when they change, and
	// one RolesChangedEvent per member whose roles changed is appended with
	// the change's events. The cause named in those events is the type of
	// the change's first event. Concurrent changes end as some serial
	// order of them would.
	DeleteGroup(ctx context.Context, ws, id string, ifVersion int64, events ...Event) error
	// UserGroups returns, for each of userIDs, the groups of ws that have it
	// as a direct member, ordered by group id. Every requested id is a key
	// of the result; an unknown id, or one of another workspace, maps to an
	// empty slice. It never reads group members: the cost is one round trip
	// for all ids, proportional to the number of groups found and
	// independent of the groups' sizes.
	UserGroups(ctx context.Context, ws string, userIDs []string) (map[string][]GroupRef, error)
	// ListEvents returns at most limit events of the workspace, both kinds
	// merged, oldest first, after the event whose id is after ("" = from
	// the start). The order is that of appending, except that a sign-in
	// event and another one appended in the same millisecond come in a
	// fixed order of the backend's; every id AppendEvent or ListEvents
	// returned is a cursor that continues exactly after its event.
	// ErrNotFound when after is not an event id. EventsFrom(t) is also a
	// cursor: the events the store appended from t on (an event id starts
	// with the Unix millisecond of its append), found without reading the
	// older ones.
	ListEvents(ctx context.Context, ws, after string, limit int) ([]Event, error)

	// CreateSession stores s until s.ExpiresAt.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns a live session; ErrNotFound when missing or expired.
	GetSession(ctx context.Context, key string) (Session, error)
	// UpdateSession changes a live session atomically (keeps its expiry).
	UpdateSession(ctx context.Context, key string, fn func(*Session) error) (Session, error)
	// DeleteSession removes the session; one already gone is no error.
	DeleteSession(ctx context.Context, key string) error

	// CreateVerification stores v until v.ExpiresAt and invalidates any
	// earlier verification for the same account and workspace.
	CreateVerification(ctx context.Context, v Verification) error
	// GetVerification returns a live, current verification without
	// consuming it; ErrNotFound when unknown, used, expired or replaced.
	GetVerification(ctx context.Context, accountID, tokenHash string) (Verification, error)
	// ConsumeVerification atomically returns a live, current verification
	// and marks it used by op (not empty; the caller's id for this
	// confirmation): of concurrent calls exactly one succeeds, the others
	// get ErrNotFound, as does every later call, except a call with the
	// same op until the verification would have expired (the same
	// confirmation, re-sent after its answer was lost), which gets it again.
	ConsumeVerification(ctx context.Context, accountID, tokenHash, op string) (Verification, error)

	// Allow counts one event against each of the limits, in one atomic
	// step, when every one of them allows it; when one refuses, the event
	// is counted against none (Allowed says which refused). Each limit is
	// a GCRA limiter (generic cell rate algorithm) shared by every process
	// on the same backend: events are allowed while they average at most
	// Rate.Limit per Rate.Period with bursts of up to Rate.Burst, so no
	// interval of length d ever lets through more than Burst +
	// d*Limit/Period events (a fixed window would let twice the limit
	// through around a window boundary). Keys are independent of each
	// other. No limits, or an invalid rate (Limit or Period not positive),
	// is an error.
	Allow(ctx context.Context, limits ...Limit) (Allowed, error)
	// CheckRate reports, counting nothing, whether Allow(limits...) would
	// allow one more event now (to refuse a client that is over a limit
	// of failures before its next attempt is even looked at).
	CheckRate(ctx context.Context, limits ...Limit) (Allowed, error)
	// ConsumeOnce records key until expiresAt and reports true the first
	// time; later calls (from any process) report false (replay cache).
	ConsumeOnce(ctx context.Context, ws, key string, expiresAt time.Time) (bool, error)
	// PutTemp stores a short-lived value (SAML request ids, CSRF state).
	PutTemp(ctx context.Context, ws, key string, value []byte, ttl time.Duration) error
	// TakeTemp returns and deletes a value stored by PutTemp (ErrNotFound).
	TakeTemp(ctx context.Context, ws, key string) ([]byte, error)

	// AppendMail adds a message to the outbox (ID and Time assigned); the
	// outbox keeps a capped number of the newest.
	AppendMail(ctx context.Context, m Mail) (Mail, error)
	// GetMail returns one message of the outbox (ErrNotFound).
	GetMail(ctx context.Context, id string) (Mail, error)
	// AddMailAttempt appends a delivery attempt to a message and sets its
	// status ("queued" while retrying, "sent", or "failed" with errText),
	// atomically; ErrNotFound for a message not in the outbox.
	AddMailAttempt(ctx context.Context, id string, a MailAttempt, status, errText string) error
	// ListMail returns up to limit messages of the outbox, newest first.
	ListMail(ctx context.Context, limit int) ([]Mail, error)

	// RecordSCIMError adds e to the workspace's provisioning summary
	// (SCIMActivity): it counts "error.<status>" in the hour of e.Time
	// and keeps e among the last MaxSCIMErrors errors. ErrNotFound when
	// the workspace does not exist (nothing is stored).
	RecordSCIMError(ctx context.Context, ws string, e SCIMRequestError) error
	// SCIMActivity returns the workspace's provisioning summary: the
	// counts of the last SCIMActivityWindow up to now, in whole hours,
	// and the last errors. The changes applied are counted by the calls
	// that append the events of type "scim.*" (AppendEvents and every
	// write that appends events), in the same atomic step; the errors by
	// RecordSCIMError. An unknown workspace has an empty summary.
	SCIMActivity(ctx context.Context, ws string, now time.Time) (SCIMActivity, error)

	// AppendEvents adds events to the workspace's events in the given
	// order, atomically (all or none), and returns them with ID (and Time
	// when zero) set. The workspace keeps a capped number of the newest
	// events. Sign-in events (type "login.*") are capped apart from all
	// others, so that however many of them are appended (anyone can cause
	// a refused sign-in) they never push an admin or provisioning event
	// out. ErrNotFound when the workspace does not exist. No events append
	// nothing.
	AppendEvents(ctx context.Context, ws string, events ...Event) ([]Event, error)

	SignIns
	Webhooks
}

// Rate is a rate: Limit events per Period on average, with bursts of up
// to Burst events at once (0 means Limit).
type Rate struct {
	Limit  int
	Burst  int
	Period time.Duration
}

// PerMinute is a rate of n events per minute with bursts of up to n.
func PerMinute(n int) Rate { return Rate{Limit: n, Burst: n, Period: time.Minute} }

// Limit is one rate limit of Store.Allow: the events counted under Key
// must stay within Rate.
type Limit struct {
	Key  string
	Rate Rate
}

// Allowed is Store.Allow's verdict.
type Allowed struct {
	// OK is true when the event is within every limit (and was counted).
	OK bool
	// Limit is, when OK is false, the index of the limit that refused
	// (the first one that did).
	Limit int
	// RetryAfter is, when OK is false, how long until that limit would
	// allow the next event; zero when OK.
	RetryAfter time.Duration
}

// SignIns are the composite operations of a SAML sign-in. Each equals a
// fixed sequence of the core calls above, which the backend runs in fewer
// round trips (and, for CreateJITUser, atomically where it can). They
// follow a sign-in: ReceiveResponse when the response arrives,
// AcceptLogin once it is valid, then CreateJITUser for a first sign-in
// or StartSession for a member.
type SignIns interface {
	// ReceiveResponse equals GetWorkspace(ws) and, when requestKey is not
	// empty, TakeTemp(ws, requestKey) (taken whether or not the workspace
	// exists). ErrNotFound when the workspace does not exist; a missing
	// temp value is Received.Request nil, not an error.
	ReceiveResponse(ctx context.Context, ws, requestKey string) (Received, error)
	// AcceptLogin equals ConsumeOnce(ws, once.Key, once.Until) and, when
	// that reports true, LoginLookup(ws, email). When the key was
	// consumed before, it returns Login{Replayed: true} and no error.
	AcceptLogin(ctx context.Context, ws string, once Once, email string) (Login, error)
	// LoginLookup equals GetAccountByEmail(email) followed, when the
	// account exists, by GetUserByAccount(ws, account.ID). ErrNotFound
	// when no account has the email; otherwise Login.Member tells whether
	// the account has a membership in ws (Login.User). It only reads. A
	// membership in another workspace is never returned.
	LoginLookup(ctx context.Context, ws, email string) (Login, error)
	// CreateJITUser is a just-in-time first sign-in. It equals
	// GetOrCreateAccount(j.Account) when it creates (and nothing else when
	// the email has an account), then CreateUser(ws, j.User) with AccountID
	// set to the new account's id, then CreateSession(j.Session) with that
	// AccountID, then AppendEvents(ws, j.Events) with each event's empty
	// AccountID and UserID set to the new ids; it returns j with the ids,
	// times and event ids set. Errors:
	//   - ConflictError "email": an account has the email; nothing was
	//     written (result zero).
	//   - ErrNotFound: the workspace does not exist; nothing was written.
	//   - ConflictError "userName", "externalId" or "account": the account
	//     was created (result's Account) but the membership was refused;
	//     the session and events were not written.
	//   - ErrUnavailable: the outcome is unknown (the backend did not
	//     answer); re-sending the same j, ids included, completes it.
	// Nothing is ever visible half-done: the account is published complete,
	// the membership never before its account, the session and events only
	// with the membership. Re-sending a j that was already written (same
	// ids) changes nothing and succeeds.
	CreateJITUser(ctx context.Context, ws string, j JITUser) (JITUser, error)
	// StartSession equals CreateSession(s) then AppendEvents(
	// s.ActiveWorkspace, events...). Where every key is on one server the
	// two are one transaction: a backend failure leaves both written or
	// neither (ErrUnavailable: not known which).
	StartSession(ctx context.Context, s Session, events ...Event) error

	// SPKeys returns the service provider's key pairs; ErrNotFound when
	// none were created yet.
	SPKeys(ctx context.Context) (SPKeys, error)
	// CreateSPKeys stores k (Version 1) unless key pairs exist already,
	// atomically: of several processes calling it together exactly one
	// creates, and every caller gets the stored record (created tells
	// whether it was this call's k).
	CreateSPKeys(ctx context.Context, k SPKeys) (stored SPKeys, created bool, err error)
	// UpdateSPKeys is an atomic read-modify-write of the key pairs (fn may
	// run more than once; an error from fn is returned as is and nothing
	// is written); Version is incremented. ErrNotFound when none exist.
	UpdateSPKeys(ctx context.Context, fn func(*SPKeys) error) (SPKeys, error)
}
