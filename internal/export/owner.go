package export

// CheckOwnerFilters reports, as a *ParamError, why typ's _typeFilter queries cannot be sent to
// the search of another service that owns typ, which the export reads page by page: with
// several queries, a resource matching two of them would be exported twice (a FHIR search
// cannot ask for the union of queries, and the pages of several searches cannot be merged
// without remembering every id). One query, or none, is fine.
func CheckOwnerFilters(typ string, filters []string) error {
	if len(filters) <= 1 {
		return nil
	}
	return notSupported(paramTypeFilter,
		"%s has %d queries, and %s is owned by another service, whose search this server reads one query at a time; "+
			"a resource matching two queries would be exported twice. Give one query for %s, or run one export per query",
		typ, len(filters), typ, typ)
}
