package routing

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// categoryRE is the shape of a category code: a FHIR code without spaces, and without the
// '|' and ',' that search tokens use as separators.
var categoryRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// ValidCategory reports whether s can be a rule's category ("" is the whole type).
func ValidCategory(s string) bool { return s == "" || categoryRE.MatchString(s) }

// maxOwnerURL bounds an owner URL's length.
const maxOwnerURL = 2048

// NormalizeOwnerURL checks an owner and returns it in canonical form: Builtin, or an absolute
// http or https base URL with a host, no user info, query or fragment, the scheme and host in
// lower case, no default port and no trailing slash — so that one owner has one spelling.
func NormalizeOwnerURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == Builtin {
		return s, nil
	}
	if s == "" {
		return "", errors.New(`ownerUrl is empty: give an http(s) base URL or "builtin"`)
	}
	if len(s) > maxOwnerURL {
		return "", fmt.Errorf("ownerUrl is longer than %d characters", maxOwnerURL)
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("ownerUrl %q is not a URL", s)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf(`ownerUrl %q must be an absolute http or https URL (or "builtin")`, s)
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("ownerUrl %q has no host", s)
	case u.User != nil:
		return "", fmt.Errorf("ownerUrl must not carry user info (credentials belong in a connector, not a URL)")
	case u.RawQuery != "" || u.ForceQuery:
		return "", fmt.Errorf("ownerUrl %q must not have a query", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "", fmt.Errorf("ownerUrl %q must not have a fragment", s)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	u.Host = host
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return "", fmt.Errorf("ownerUrl %q must not contain . or .. path segments", s)
		}
	}
	return u.String(), nil
}

// Normalize checks r and returns it normalised (trimmed, owner URL canonical), with every
// problem found, worded for the person who wrote the rule.
func (r Rule) Normalize() (Rule, []string) {
	var problems []string
	r.ResourceType = strings.TrimSpace(r.ResourceType)
	r.Category = strings.TrimSpace(r.Category)
	switch {
	case r.ResourceType == "":
		problems = append(problems, `resourceType is empty: give a FHIR R4 resource type or "*"`)
	case r.ResourceType == AnyType:
		if r.Category != "" {
			problems = append(problems, `the "*" rule owns every other type whole; it cannot have a category`)
		}
	case !IsResourceType(r.ResourceType):
		problems = append(problems, fmt.Sprintf("resourceType %q is not a FHIR R4 resource type", r.ResourceType))
	}
	if !ValidCategory(r.Category) {
		problems = append(problems, fmt.Sprintf("category %q is not a code (letters, digits, '.', '_', ':', '-'; at most 64)", r.Category))
	}
	owner, err := NormalizeOwnerURL(r.OwnerURL)
	if err != nil {
		problems = append(problems, err.Error())
	} else {
		r.OwnerURL = owner
	}
	return r, problems
}
