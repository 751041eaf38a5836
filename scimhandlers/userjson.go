package scimhandlers

import (
	"slices"
	"sync"

	"github.com/scimjit/scimjit/storage"
)

// appendUser appends the JSON of presentUser(renderUser(base, u, groups), u) to dst, byte
// for byte what appendJSON (and so json.Marshal) writes for that document,
// without building it: the typed fields, meta, schemas and groups are
// written directly and the attributes one by one, in the sorted key order
// json.Marshal uses (TestAppendUserMatchesRenderUser). It serves reads
// without a projection, the most frequent requests an IdP sends.
func appendUser(dst []byte, base string, u *storage.User, groups []storage.GroupRef) ([]byte, error) {
	kp := keySlices.Get().(*[]string)
	defer func() {
		clear(*kp)
		*kp = (*kp)[:0]
		keySlices.Put(kp)
	}()
	keys := (*kp)[:0]
	for k := range u.Attributes {
		if !slices.Contains(typedUserKeys, k) {
			keys = append(keys, k)
		}
	}
	_, hasEmails := u.Attributes["emails"]
	typedEmails := !hasEmails && len(u.Emails) > 0
	hasRoles := u.Roles.Dev != "" || u.Roles.Test != "" || u.Roles.Prod != ""
	rk := roleKey(u) // the role extension's key, as presentUser renames it
	keys = append(keys, "userName", "active", "id", "schemas", "meta")
	if u.ExternalID != "" {
		keys = append(keys, "externalId")
	}
	if hasRoles {
		keys = append(keys, rk)
	}
	if typedEmails {
		keys = append(keys, "emails")
	}
	if groups != nil {
		keys = append(keys, "groups")
	}
	slices.Sort(keys)
	*kp = keys

	var err error
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, err = appendJSONString(dst, k); err != nil {
			return nil, err
		}
		dst = append(dst, ':')
		switch k {
		case "userName":
			dst, err = appendJSONString(dst, u.UserName)
		case "externalId":
			dst, err = appendJSONString(dst, u.ExternalID)
		case "active":
			dst = appendBool(dst, u.Active)
		case "id":
			dst, err = appendJSONString(dst, u.ID)
		case rk:
			dst, err = appendRoles(dst, u.Roles)
		case "schemas":
			dst, err = appendUserSchemas(dst, u, hasRoles)
		case "meta":
			dst, err = appendUserMeta(dst, base, u)
		case "groups":
			dst, err = appendGroupRefs(dst, base, groups)
		case "emails":
			if typedEmails {
				dst, err = appendTypedEmails(dst, u.Emails)
				break
			}
			fallthrough
		default:
			dst, err = appendJSONDepth(dst, u.Attributes[k], 1)
		}
		if err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// appendRoles writes the role extension as userDoc builds it: the
// non-empty roles, keys sorted.
func appendRoles(dst []byte, r storage.Roles) ([]byte, error) {
	dst = append(dst, '{')
	n := 0
	var err error
	for _, name := range sortedRoleNames() {
		v := r.Dev
		switch name {
		case roleTest:
			v = r.Test
		case roleProd:
			v = r.Prod
		}
		if v == "" {
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		if dst, err = appendJSONString(dst, name); err != nil {
			return nil, err
		}
		dst = append(dst, ':')
		if dst, err = appendJSONString(dst, v); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

var sortedRoleNames = sync.OnceValue(func() []string {
	names := []string{roleDev, roleTest, roleProd}
	slices.Sort(names)
	return names
})

// appendUserSchemas writes renderUser's schemas: the core schema, then each
// extension the document has, in userKind.exts order, the role extension
// as presentUser names it.
func appendUserSchemas(dst []byte, u *storage.User, hasRoles bool) ([]byte, error) {
	dst = append(dst, '[')
	var err error
	if dst, err = appendJSONString(dst, userURN); err != nil {
		return nil, err
	}
	for _, e := range userKind.exts {
		present, id := hasRoles, roleKey(u)
		if e.ID != RoleURN {
			_, present = u.Attributes[e.ID]
			id = e.ID
		}
		if !present {
			continue
		}
		dst = append(dst, ',')
		if dst, err = appendJSONString(dst, id); err != nil {
			return nil, err
		}
	}
	return append(dst, ']'), nil
}

// appendUserMeta writes renderUser's meta (keys sorted).
func appendUserMeta(dst []byte, base string, u *storage.User) ([]byte, error) {
	var err error
	dst = append(dst, `{"created":`...)
	if dst, err = appendJSONString(dst, fmtTime(u.Created)); err != nil {
		return nil, err
	}
	dst = append(dst, `,"lastModified":`...)
	if dst, err = appendJSONString(dst, fmtTime(u.Modified)); err != nil {
		return nil, err
	}
	dst = append(dst, `,"location":`...)
	if dst, err = appendJSONString(dst, base+"/Users/"+u.ID); err != nil {
		return nil, err
	}
	dst = append(dst, `,"resourceType":"User","version":`...)
	if dst, err = appendJSONString(dst, etag(u.Version)); err != nil {
		return nil, err
	}
	return append(dst, '}'), nil
}

// appendGroupRefs writes groupsValue(base, groups) (keys sorted).
func appendGroupRefs(dst []byte, base string, groups []storage.GroupRef) ([]byte, error) {
	dst = append(dst, '[')
	var err error
	for i, g := range groups {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"$ref":`...)
		if dst, err = appendJSONString(dst, base+"/Groups/"+g.ID); err != nil {
			return nil, err
		}
		dst = append(dst, `,"display":`...)
		if dst, err = appendJSONString(dst, g.DisplayName); err != nil {
			return nil, err
		}
		dst = append(dst, `,"type":"direct","value":`...)
		if dst, err = appendJSONString(dst, g.ID); err != nil {
			return nil, err
		}
		dst = append(dst, '}')
	}
	return append(dst, ']'), nil
}

// appendTypedEmails writes the emails userDoc derives from the typed field
// of a membership that has no emails attribute.
func appendTypedEmails(dst []byte, emails []string) ([]byte, error) {
	dst = append(dst, '[')
	var err error
	for i, e := range emails {
		if i > 0 {
			dst = append(dst, ',')
			dst = append(dst, `{"type":"work","value":`...)
		} else {
			dst = append(dst, `{"primary":true,"type":"work","value":`...)
		}
		if dst, err = appendJSONString(dst, e); err != nil {
			return nil, err
		}
		dst = append(dst, '}')
	}
	return append(dst, ']'), nil
}
