package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/fhir"
)

// Query is a search over one resource type. Zero fields do not filter. ID, Identifier and
// AnySystem are shorthands for the _id and identifier parameters; Params holds the rest, as
// ParseQuery reads them from a FHIR search URL.
type Query struct {
	ID         string
	Identifier *fhir.Identifier
	// AnySystem matches Identifier.Value under any system (token search without "|").
	AnySystem bool
	// Count is the page size: 0 means DefaultCount, above MaxCount means MaxCount.
	Count int
	// OnlyTotal asks for the total and no resources (_count=0 or _summary=count).
	OnlyTotal bool

	// Params are search parameters, ANDed; each one's Values are ORed.
	Params []Param
	// Sort is one of "", "_lastUpdated", "-_lastUpdated", "date", "-date", "_id", "-_id";
	// "" means _lastUpdated (oldest update first).
	Sort string
	// Total says whether to count every match: TotalAccurate (the default) or TotalNone.
	Total string
	// Include names reference parameters of the searched type whose targets are returned
	// alongside the page (_include=Observation:subject → "subject").
	Include []string
	// Cursor continues a search from a previous SearchResult.Next; it is only valid for the
	// same tenant, type, parameters and sort, and CursorKey.
	Cursor string
	// CursorKey signs and verifies cursors; nil means a key made once per process, so that
	// cursors do not survive a restart. Give every replica of a service the same key.
	CursorKey []byte
}

// Param is one search parameter occurrence: name[:modifier]=v1,v2 (values still escaped as
// FHIR escapes them: "\,", "\|", "\$", "\\").
type Param struct {
	Name     string
	Modifier string
	Values   []string
}

// Values of Query.Total.
const (
	TotalAccurate = "accurate"
	TotalNone     = "none"
)

// MaxCount caps _count so one search cannot pull a whole table into memory.
const MaxCount = 1000

// DefaultCount is the page size when _count is absent.
const DefaultCount = 50

// CursorParam is the search parameter that carries SearchResult.Next in a next link.
const CursorParam = "_cursor"

// SearchResult is one page of matches.
type SearchResult struct {
	Resources []Resource
	// Included are the targets of Query.Include, each once, none of them also a match.
	Included []Resource
	// Total is the number of matches, -1 when Query.Total is TotalNone.
	Total int
	// Next continues the search after this page; "" on the last page.
	Next string
}

// ErrInvalidSearch is wrapped by every *ParamError.
var ErrInvalidSearch = errors.New("invalid search")

// ParamError is a search parameter the store does not know, does not support, or cannot read
// (FHIR: 400, unless the client asked for Prefer: handling=lenient, see ParseQuery).
type ParamError struct {
	Param string
	// Unknown is set for a parameter (or modifier) the store does not support, as opposed to
	// a supported one with an unreadable value.
	Unknown bool
	Reason  string
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("search parameter %s: %s", e.Param, e.Reason)
}

// Unwrap makes every ParamError an ErrInvalidSearch.
func (e *ParamError) Unwrap() error { return ErrInvalidSearch }

// Parameters the store ignores quietly: the HTTP layer handles them.
var transportParams = []string{"_format", "_pretty"}

// ParseQuery reads a FHIR search URL's parameters for typ. Unknown or unsupported parameters
// are a *ParamError unless lenient is set (Prefer: handling=lenient); they are then skipped
// and listed in ignored. Unreadable values of known parameters are always an error.
func ParseQuery(typ string, params url.Values, lenient bool) (q Query, ignored []string, err error) {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	unknown := func(name, reason string) error {
		if lenient {
			ignored = append(ignored, name)
			return nil
		}
		return &ParamError{Param: name, Unknown: true, Reason: reason}
	}
	for _, key := range names {
		vals := params[key]
		name, modifier, _ := strings.Cut(key, ":")
		switch name {
		case "_count":
			if modifier != "" || len(vals) != 1 {
				return Query{}, nil, &ParamError{Param: key, Reason: "give _count once"}
			}
			n, err := strconv.Atoi(vals[0])
			if err != nil || n < 0 {
				return Query{}, nil, &ParamError{Param: key, Reason: "not a non-negative integer"}
			}
			q.Count = n
			q.OnlyTotal = q.OnlyTotal || n == 0
			continue
		case "_summary":
			// count is what a client asks to size a patient's record; the other summaries
			// (true, text, data) would need per-type summary elements the store does not keep.
			switch {
			case modifier != "" || len(vals) != 1:
				return Query{}, nil, &ParamError{Param: key, Reason: "give _summary once"}
			case vals[0] == "count":
				q.OnlyTotal = true
			case vals[0] == "false":
			default:
				if err := unknown(key, "only _summary=count (and false) is supported"); err != nil {
					return Query{}, nil, err
				}
			}
			continue
		case "_sort":
			if len(vals) != 1 || !slices.Contains([]string{"_lastUpdated", "-_lastUpdated", "date", "-date", "_id", "-_id"}, vals[0]) {
				return Query{}, nil, &ParamError{Param: key, Unknown: true, Reason: "supported: one of _lastUpdated, date, _id, each optionally descending (-)"}
			}
			if strings.TrimPrefix(vals[0], "-") == "date" {
				if _, ok := lookupParam(typ, "date"); !ok {
					return Query{}, nil, &ParamError{Param: key, Unknown: true, Reason: typ + " has no date parameter"}
				}
			}
			q.Sort = vals[0]
			continue
		case "_total":
			switch {
			case len(vals) == 1 && (vals[0] == TotalNone || vals[0] == TotalAccurate):
				q.Total = vals[0]
			case len(vals) == 1 && vals[0] == "estimate":
				q.Total = TotalAccurate
			default:
				return Query{}, nil, &ParamError{Param: key, Reason: "want none, estimate or accurate"}
			}
			continue
		case "_include":
			if modifier != "" {
				if err := unknown(key, "modifiers of _include are not supported"); err != nil {
					return Query{}, nil, err
				}
				continue
			}
			for _, v := range vals {
				src, p, _ := strings.Cut(v, ":")
				p, target, _ := strings.Cut(p, ":")
				d, ok := lookupParam(typ, p)
				if src != typ || !ok || d.kind != kindReference || (target != "" && d.target != "" && target != d.target) {
					if err := unknown(key, fmt.Sprintf("%q: supported are %s:<%s>", v, typ, strings.Join(IncludeParams(typ), "|"))); err != nil {
						return Query{}, nil, err
					}
					continue
				}
				if !slices.Contains(q.Include, p) {
					q.Include = append(q.Include, p)
				}
			}
			continue
		case CursorParam:
			if len(vals) != 1 {
				return Query{}, nil, &ParamError{Param: key, Reason: "give one cursor"}
			}
			q.Cursor = vals[0]
			continue
		}
		if slices.Contains(transportParams, name) {
			continue
		}
		d, ok := lookupParam(typ, name)
		if name != "_id" && name != "_lastUpdated" && !ok {
			if err := unknown(key, "not a search parameter of "+typ+" in this store"); err != nil {
				return Query{}, nil, err
			}
			continue
		}
		if modifier != "" && !(d.kind == kindReference && fhir.ValidType(modifier)) {
			if err := unknown(key, "modifier :"+modifier+" is not supported"); err != nil {
				return Query{}, nil, err
			}
			continue
		}
		for _, v := range vals {
			if v == "" {
				continue // FHIR: an empty parameter value is ignored
			}
			q.Params = append(q.Params, Param{Name: name, Modifier: modifier, Values: splitEscaped(v, ',')})
		}
	}
	// Compile once to report unreadable values now, not at the first page.
	if _, err := compileWhere(typ, q.params(), &sqlArgs{}, true); err != nil {
		return Query{}, nil, err
	}
	return q, ignored, nil
}

// params returns Params with the ID and Identifier shorthands added.
func (q Query) params() []Param {
	out := slices.Clone(q.Params)
	if q.ID != "" {
		out = append(out, Param{Name: "_id", Values: []string{escape(q.ID)}})
	}
	if q.Identifier != nil {
		v := escape(q.Identifier.System) + "|" + escape(q.Identifier.Value)
		if q.AnySystem {
			v = escape(q.Identifier.Value)
		}
		out = append(out, Param{Name: "identifier", Values: []string{v}})
	}
	return out
}

// canonical renders the parameters and sort that decide which rows a search returns and in
// which order: what a cursor is bound to.
func (q Query) canonical() string {
	ps := q.params()
	parts := make([]string, 0, len(ps)+1)
	for _, p := range ps {
		parts = append(parts, p.Name+":"+p.Modifier+"="+strings.Join(p.Values, ","))
	}
	slices.Sort(parts)
	return q.Sort + "\x1e" + strings.Join(parts, "\x1e")
}

// sqlArgs collects positional parameters: every value of a search reaches PostgreSQL as a
// bind parameter, never as SQL text.
type sqlArgs struct{ args []any }

func (a *sqlArgs) add(v any) string {
	a.args = append(a.args, v)
	return "$" + strconv.Itoa(len(a.args))
}

// compiledWhere is a search's conditions as SQL, $1 and $2 being the tenant and type.
type compiledWhere struct {
	// drivers select, from its search table, the ids matching each selective parameter
	// (identifier, patient, subject, encounter). When there is one, the search starts from
	// the intersection of the drivers' ids and reads each match by primary key (see
	// searchFrom), rather than leaving the planner free to walk the whole type in sort order.
	drivers []string
	// filters are the other conditions, on r (fhir_resources).
	filters []string
}

// searchTables are the search index tables by parameter kind.
var searchTables = [...]string{kindToken: "fhir_search_tokens", kindReference: "fhir_search_refs", kindDate: "fhir_search_dates"} //nolint:gosec // G101: table names; "tokens" is FHIR's token search parameter, not a credential

// compileWhere turns params into SQL conditions. It uses only fixed SQL fragments; values go
// to args. drive allows drivers (a search's page); without it every condition is a filter
// (an export, which reads the whole type in id order anyway).
//
// Without a selective parameter each condition is an uncorrelated "r.id IN (SELECT … FROM
// <search table>)", and the planner chooses between walking the type in sort order and
// starting from a search table. With one, that choice is taken away: on a young table whose
// statistics predate the type's rows, the planner walked every resource of the type in sort
// order, probing the search table for each (a patient's Observations at 200,000 resources:
// 670 ms, and minutes by identifier under a generic plan, for a lookup of 0.2 ms). The other
// conditions are then checked per match, each with one probe of its search table by id.
func compileWhere(typ string, params []Param, args *sqlArgs, drive bool) (compiledWhere, error) {
	if len(args.args) == 0 {
		args.add("")
		args.add("")
	}
	driven := drive && slices.ContainsFunc(params, func(p Param) bool {
		d, ok := lookupParam(typ, p.Name)
		return ok && d.selective && len(p.Values) > 0
	})
	var w compiledWhere
	for _, p := range params {
		var ors []string
		for _, raw := range p.Values {
			c, err := compileValue(typ, p, raw, args)
			if err != nil {
				return compiledWhere{}, err
			}
			ors = append(ors, c)
		}
		if len(ors) == 0 {
			continue
		}
		or := "(" + strings.Join(ors, " OR ") + ")"
		if p.Name == "_id" || p.Name == "_lastUpdated" {
			w.filters = append(w.filters, or)
			continue
		}
		d, _ := lookupParam(typ, p.Name)
		table := searchTables[d.kind]
		match := "t.tenant_id = $1 AND t.resource_type = $2 AND t.param = " + args.add(p.Name) + " AND " + or
		switch {
		case driven && d.selective:
			w.drivers = append(w.drivers, "SELECT t.id FROM "+table+" t WHERE "+match)
		case driven:
			// OFFSET 0 keeps the subquery from being turned into a join: it runs once per
			// match, by resource id, and never scans the parameter's whole value range.
			w.filters = append(w.filters, "EXISTS (SELECT FROM "+table+" t WHERE t.id = r.id AND "+match+" OFFSET 0)")
		default:
			w.filters = append(w.filters, "r.id IN (SELECT t.id FROM "+table+" t WHERE "+match+")")
		}
	}
	return w, nil
}

// searchColumns are the columns a search reads of each match.
const searchColumns = "r.resource_type, r.id, r.version_id, r.last_updated, r.resource, r.sort_date"

// searchFrom returns the WITH prefix and the FROM clause (with its conditions) of a search
// whose rows are r with searchColumns, matching w and the extra conditions on r.
//
// Driven by selective parameters it reads: the drivers' ids, materialised (a fence the planner
// cannot see through); then each id's resource by primary key, in a LATERAL subquery that
// OFFSET 0 keeps from being flattened into a join (so the planner cannot walk the type in
// sort order and look the ids up); the caller sorts what that returns. Statistics that old
// still let the planner take a (tenant, type)-prefixed index for a lookup, which costs a scan
// of the type's index entries: only ANALYZE cures that; the shape bounds the harm.
func searchFrom(w compiledWhere, extra ...string) (with, from string) {
	conds := append(append([]string{"r.tenant_id = $1 AND r.resource_type = $2 AND NOT r.deleted"}, w.filters...), extra...)
	if len(w.drivers) == 0 {
		return "", "fhir_resources r WHERE " + strings.Join(conds, " AND ")
	}
	return "WITH m AS MATERIALIZED (" + strings.Join(w.drivers, " INTERSECT ") + ") ",
		"(SELECT DISTINCT m.id FROM m) m CROSS JOIN LATERAL (SELECT " + searchColumns +
			" FROM fhir_resources r WHERE r.id = m.id AND " + strings.Join(conds, " AND ") + " OFFSET 0) r"
}

// datePrefixes are the comparisons of a date search (ap is not supported).
var datePrefixes = []string{"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"}

func compileValue(typ string, p Param, raw string, args *sqlArgs) (string, error) {
	bad := func(reason string) error { return &ParamError{Param: p.Name, Reason: reason} }
	if strings.ContainsRune(raw, 0) || !utf8.ValidString(raw) {
		return "", bad("values must be UTF-8 text without NUL")
	}
	switch p.Name {
	case "_id":
		return "r.id = " + args.add(unescape(raw)), nil
	case "_lastUpdated":
		prefix, lo, hi, err := dateParam(raw)
		if err != nil {
			return "", bad(err.Error())
		}
		return dateCondition(prefix, "r.last_updated", "r.last_updated", true, lo, hi, args), nil
	}
	d, _ := lookupParam(typ, p.Name)
	switch d.kind {
	case kindToken:
		parts := splitEscaped(raw, '|')
		switch {
		case len(parts) == 1:
			return "t.code = " + args.add(unescape(parts[0])), nil
		case len(parts) == 2 && parts[1] == "":
			return "t.system = " + args.add(unescape(parts[0])), nil
		case len(parts) == 2:
			return "(t.code = " + args.add(unescape(parts[1])) + " AND t.system = " + args.add(unescape(parts[0])) + ")", nil
		}
		return "", bad("want code, system|code, |code or system|")
	case kindReference:
		typ, id := splitReference(unescape(raw))
		if p.Modifier != "" {
			if typ != "" && typ != p.Modifier {
				return "", bad("the reference's type differs from the :" + p.Modifier + " modifier")
			}
			typ = p.Modifier
		}
		if typ == "" {
			typ = d.target
		}
		if !fhir.ValidID(id) {
			return "", bad("want Type/id or id")
		}
		if typ == "" {
			return "t.target_id = " + args.add(id), nil
		}
		return "(t.target_id = " + args.add(id) + " AND t.target_type = " + args.add(typ) + ")", nil
	case kindDate:
		prefix, lo, hi, err := dateParam(raw)
		if err != nil {
			return "", bad(err.Error())
		}
		return dateCondition(prefix, "t.lo", "t.hi", false, lo, hi, args), nil
	}
	return "", &ParamError{Param: p.Name, Unknown: true, Reason: "not supported"}
}

// dateCondition compares a stored range [lower, upper) with the search range [lo, hi) as the
// prefix asks. An instant (point) column is its own lower and upper bound: then "after the
// search range" is >= hi rather than > hi.
func dateCondition(prefix, lower, upper string, point bool, lo, hi time.Time, args *sqlArgs) string {
	gtOp, leOp := " > ", " <= "
	if point {
		gtOp, leOp = " >= ", " < "
	}
	switch prefix {
	case "ne":
		return "NOT (" + lower + " >= " + args.add(lo) + " AND " + upper + leOp + args.add(hi) + ")"
	case "gt", "sa":
		if prefix == "sa" {
			return lower + " >= " + args.add(hi)
		}
		return upper + gtOp + args.add(hi)
	case "lt":
		return lower + " < " + args.add(lo)
	case "eb":
		return upper + leOp + args.add(lo)
	case "ge":
		return upper + gtOp + args.add(lo)
	case "le":
		return lower + " < " + args.add(hi)
	}
	return "(" + lower + " >= " + args.add(lo) + " AND " + upper + leOp + args.add(hi) + ")"
}

func dateParam(raw string) (prefix string, lo, hi time.Time, err error) {
	v := unescape(raw)
	prefix = "eq"
	if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' {
		prefix, v = v[:2], v[2:]
		if !slices.Contains(datePrefixes, prefix) {
			return "", time.Time{}, time.Time{}, fmt.Errorf("prefix %q: supported are %s", prefix, strings.Join(datePrefixes, ", "))
		}
	}
	lo, hi, err = parseDateRange(v)
	return prefix, lo, hi, err
}

// splitEscaped splits s at every sep not escaped by a backslash, keeping escapes.
func splitEscaped(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `,`, `\,`, `|`, `\|`, `$`, `\$`).Replace(s)
}

// sortSpec is the ORDER BY of a search: the sort column and direction.
type sortSpec struct {
	column string // r.last_updated, r.sort_date or r.id
	desc   bool
}

func (q Query) sortSpec() sortSpec {
	key := strings.TrimPrefix(q.Sort, "-")
	s := sortSpec{column: "r.last_updated", desc: strings.HasPrefix(q.Sort, "-")}
	switch key {
	case "date":
		s.column = "r.sort_date"
	case "_id":
		s.column = "r.id"
	}
	return s
}

// Search returns one page of the resources of typ in tenant that match q, in q.Sort order.
func (s *Store) Search(ctx context.Context, tenant, typ string, q Query) (SearchResult, error) {
	return search(ctx, s.Pool, tenant, typ, q)
}

// Search is Store.Search inside the transaction.
func (tx *Tx) Search(ctx context.Context, tenant, typ string, q Query) (SearchResult, error) {
	return search(ctx, tx.conn, tenant, typ, q)
}

func search(ctx context.Context, conn db.DBTX, tenant, typ string, q Query) (SearchResult, error) {
	args := &sqlArgs{}
	args.add(tenant)
	args.add(typ)
	w, err := compileWhere(typ, q.params(), args, true)
	if err != nil {
		return SearchResult{}, err
	}
	for _, name := range q.Include {
		if d, ok := lookupParam(typ, name); !ok || d.kind != kindReference {
			return SearchResult{}, &ParamError{Param: "_include", Unknown: true, Reason: typ + ":" + name + " is not a reference parameter"}
		}
	}
	count := q.Count
	if count <= 0 {
		count = DefaultCount
	}
	count = min(count, MaxCount)
	res := SearchResult{Resources: []Resource{}, Total: -1}

	sort := q.sortSpec()
	binding := tenant + "\x1f" + typ + "\x1f" + q.canonical()
	pageArgs := &sqlArgs{args: slices.Clone(args.args)}
	var after []string
	if q.Cursor != "" {
		pos, err := verifyCursor(q.CursorKey, binding, q.Cursor)
		if err != nil {
			return SearchResult{}, err
		}
		key, err := sort.keyValue(pos.Key)
		if err != nil {
			return SearchResult{}, ErrBadCursor
		}
		op := ">"
		if sort.desc {
			op = "<"
		}
		after = append(after, "("+sort.column+", r.id) "+op+" ("+pageArgs.add(key)+", "+pageArgs.add(pos.ID)+")")
	}
	if !q.OnlyTotal {
		sql := pageSQL(w, sort, after, pageArgs.add(count+1))
		rows, err := conn.Query(ctx, sql, execMode(w, pageArgs.args)...)
		if err != nil {
			return SearchResult{}, fmt.Errorf("search %s: %w", typ, err)
		}
		var sortDates []time.Time
		for rows.Next() {
			var r Resource
			var sortDate time.Time
			if err := rows.Scan(&r.Type, &r.ID, &r.VersionID, &r.LastUpdated, (*[]byte)(&r.Body), &sortDate); err != nil {
				rows.Close()
				return SearchResult{}, fmt.Errorf("search %s: %w", typ, err)
			}
			res.Resources = append(res.Resources, r)
			sortDates = append(sortDates, sortDate)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return SearchResult{}, fmt.Errorf("search %s: %w", typ, err)
		}
		if len(res.Resources) > count {
			res.Resources = res.Resources[:count]
			last := res.Resources[count-1]
			res.Next = signCursor(q.CursorKey, binding, cursorPos{Key: sort.keyOf(last, sortDates[count-1]), ID: last.ID})
		}
	}
	switch {
	case q.Total == TotalNone && !q.OnlyTotal:
	case q.Cursor == "" && !q.OnlyTotal && res.Next == "":
		res.Total = len(res.Resources) // the first page holds every match
	default:
		var n int64
		with, from := searchFrom(w)
		if err := conn.QueryRow(ctx, with+"SELECT count(*) FROM "+from, execMode(w, args.args)...).Scan(&n); err != nil {
			return SearchResult{}, fmt.Errorf("count %s: %w", typ, err)
		}
		res.Total = int(n)
	}
	if len(q.Include) > 0 && len(res.Resources) > 0 {
		if res.Included, err = includes(ctx, conn, tenant, typ, q.Include, res.Resources); err != nil {
			return SearchResult{}, err
		}
	}
	return res, nil
}

// pageSQL is the query of a search page: the matches of w after the cursor conditions, in
// sort order, at most limit (a bind parameter) of them.
func pageSQL(w compiledWhere, sort sortSpec, after []string, limit string) string {
	dir := ""
	if sort.desc {
		dir = " DESC"
	}
	with, from := searchFrom(w, after...)
	return with + "SELECT " + searchColumns + " FROM " + from +
		" ORDER BY " + sort.column + dir + ", r.id" + dir + " LIMIT " + limit
}

// execMode plans searches with several conditions for their values, each time: a cached
// generic plan cannot tell a selective condition (patient) from a broad one (date=ge2024)
// and may join them the wrong way round (16 ms instead of 0.5 ms in BenchmarkSearchAt1M).
// Searches driven by a selective parameter have their plan's shape fixed by searchFrom, and
// single-condition searches have little to choose: both keep pgx's cached prepared statements.
func execMode(w compiledWhere, args []any) []any {
	if len(w.drivers) > 0 || len(w.filters) < 2 {
		return args
	}
	return append([]any{pgx.QueryExecModeExec}, args...)
}

func (s sortSpec) keyOf(r Resource, sortDate time.Time) string {
	switch s.column {
	case "r.sort_date":
		return sortDate.UTC().Format(time.RFC3339Nano)
	case "r.id":
		return r.ID
	}
	return r.LastUpdated.UTC().Format(time.RFC3339Nano)
}

func (s sortSpec) keyValue(key string) (any, error) {
	if s.column == "r.id" {
		return key, nil
	}
	return time.Parse(time.RFC3339Nano, key)
}

// includes reads the targets of the include parameters of the page's resources, in the
// tenant only, skipping deleted ones and those already in the page.
func includes(ctx context.Context, conn db.DBTX, tenant, typ string, params []string, page []Resource) ([]Resource, error) {
	seen := map[[2]string]bool{}
	for _, r := range page {
		seen[[2]string{r.Type, r.ID}] = true
	}
	var types, ids []string
	for _, r := range page {
		idx, err := extractIndex(typ, r.Body)
		if err != nil {
			continue
		}
		for _, f := range idx.refs {
			k := [2]string{f.typ, f.id}
			if !slices.Contains(params, f.param) || f.typ == "" || seen[k] {
				continue
			}
			seen[k] = true
			types, ids = append(types, f.typ), append(ids, f.id)
		}
	}
	out := []Resource{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.New(conn).FhirResourceListCurrentByKeys(ctx, db.FhirResourceListCurrentByKeysParams{
		TenantID: tenant, ResourceTypes: types, IDs: ids,
	})
	if err != nil {
		return nil, fmt.Errorf("read included resources: %w", err)
	}
	for _, r := range rows {
		out = append(out, Resource{Type: r.ResourceType, ID: r.ID, VersionID: r.VersionID, LastUpdated: r.LastUpdated, Body: r.Resource})
	}
	return out, nil
}
