package mapping

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"path"
	"strings"
	"unicode/utf8"
)

// Media types of encapsulated data (ED) and reference pointers (RP). v2 names the type in two
// parts, ED-2/RP-3 "type of data" (table 0191: AP, IM, TEXT…, or an IANA top-level type as
// many senders write) and ED-3/RP-4 "subtype" (table 0291: PDF, JPEG, RTF…, or an IANA
// subtype); FHIR wants one IANA media type. Senders get both wrong often enough that the IG
// advises checking the data itself, so an ED's contentType is the declared type unless it is
// missing, malformed, or contradicted by the data's magic number.

// majorTypes maps table 0191 codes and IANA top-level names to the IANA top-level type.
var majorTypes = map[string]string{
	"AP": "application", "AU": "audio", "IM": "image", "SI": "image", "NS": "image", "TEXT": "text",
	"TX": "text", "FT": "text", "MULTIPART": "multipart", "APPLICATION": "application", "AUDIO": "audio",
	"IMAGE": "image", "VIDEO": "video", "MODEL": "model", "MESSAGE": "message", "FONT": "font",
}

// subTypes maps table 0291 subtypes (and the names senders use beside them) to the full IANA
// type, so that a subtype is right whatever ED-2 says ("AP^JPEG" is still a JPEG).
var subTypes = map[string]string{
	"PDF": "application/pdf", "JPEG": "image/jpeg", "JPG": "image/jpeg", "GIF": "image/gif", "PNG": "image/png",
	"TIFF": "image/tiff", "TIF": "image/tiff", "BMP": "image/bmp", "RTF": "application/rtf", "HTML": "text/html",
	"HTM": "text/html", "XML": "application/xml", "SGML": "text/sgml", "POSTSCRIPT": "application/postscript",
	"OCTET-STREAM": "application/octet-stream", "DICOM": "application/dicom", "FAX": "image/g3fax",
	"BASIC": "audio/basic", "PICT": "image/x-pict", "PLAIN": "text/plain", "TXT": "text/plain",
	"MSWORD": "application/msword", "DOC": "application/msword", "ZIP": "application/zip",
	"DOCX":                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	"X-HL7-CDA-LEVEL-ONE": "multipart/x-hl7-cda-level-one", "WAV": "audio/wav", "MPEG": "video/mpeg", "MP4": "video/mp4",
}

// mediaType builds an IANA media type from a v2 type of data (ED-2, RP-3) and subtype (ED-3,
// RP-4). It returns "" when the pair does not name one; the caller then sniffs the data.
func mediaType(typ, sub string) string {
	typ, sub = strings.TrimSpace(typ), strings.TrimSpace(sub)
	for _, s := range [2]string{sub, typ} {
		if strings.Contains(s, "/") {
			if s = strings.ToLower(s); validMediaType(s) {
				return s
			}
			return ""
		}
	}
	if t, ok := subTypes[strings.ToUpper(sub)]; ok {
		if strings.EqualFold(sub, "XML") && majorTypes[strings.ToUpper(typ)] == "text" {
			return "text/xml"
		}
		return t
	}
	major := majorTypes[strings.ToUpper(typ)]
	switch {
	case major != "" && sub != "":
		if s := major + "/" + strings.ToLower(sub); validMediaType(s) {
			return s
		}
	case major == "text":
		return "text/plain"
	}
	return ""
}

// validMediaType checks a lower-case type/subtype: an IANA top-level type and a subtype of
// RFC 6838 restricted-name characters.
func validMediaType(s string) bool {
	major, minor, ok := strings.Cut(s, "/")
	if !ok || majorTypes[strings.ToUpper(major)] != major || minor == "" || len(minor) > 127 {
		return false
	}
	if i := strings.IndexByte(minor, ';'); i >= 0 { // parameters ("; charset=…") are kept as written
		minor = strings.TrimSpace(minor[:i])
	}
	for i := 0; i < len(minor); i++ {
		c := minor[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&-^_.+", c) >= 0) {
			return false
		}
	}
	return minor[0] != '-' && minor[0] != '.'
}

// magic numbers of the formats results carry, checked in order. They are certain: a
// declared type they contradict is wrong.
var magic = []struct {
	prefix, typ string
}{
	{"%PDF-", "application/pdf"},
	{"\x89PNG\r\n\x1a\n", "image/png"},
	{"\xff\xd8\xff", "image/jpeg"},
	{"GIF87a", "image/gif"},
	{"GIF89a", "image/gif"},
	{"II*\x00", "image/tiff"},
	{"MM\x00*", "image/tiff"},
	{"{\\rtf", "application/rtf"},
	{"%!PS", "application/postscript"},
	{"PK\x03\x04", "application/zip"},
}

// sniffMedia returns the media type the data's first bytes show, and whether that is certain
// (a magic number) rather than a guess from its characters (markup, text, bytes).
func sniffMedia(data []byte) (typ string, certain bool) {
	for _, m := range magic {
		if bytes.HasPrefix(data, []byte(m.prefix)) {
			return m.typ, true
		}
	}
	if len(data) >= 132 && string(data[128:132]) == "DICM" {
		return "application/dicom", true
	}
	head := data
	if len(head) > 512 {
		head = head[:512]
	}
	if !isText(head, len(data) > len(head)) {
		return "application/octet-stream", false
	}
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
	lower := bytes.ToLower(trimmed)
	switch {
	case bytes.HasPrefix(lower, []byte("<!doctype html")) || bytes.HasPrefix(lower, []byte("<html")):
		return "text/html", false
	case bytes.HasPrefix(lower, []byte("<?xml")):
		if bytes.Contains(lower, []byte("<html")) {
			return "text/html", false
		}
		return "application/xml", false
	}
	return "text/plain", false
}

// isText reports whether b is UTF-8 without control characters other than tab, line breaks
// and form feed; cut says b is a prefix, which may end inside a character.
func isText(b []byte, cut bool) bool {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return cut && len(b)-i < utf8.UTFMax && !utf8.FullRune(b[i:])
		}
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' && r != '\f' || r == 0x7f {
			return false
		}
		i += size
	}
	return true
}

// sameMedia compares media types, taking the aliases senders use as equal.
func sameMedia(a, b string) bool {
	canon := func(s string) string {
		if i := strings.IndexByte(s, ';'); i >= 0 {
			s = strings.TrimSpace(s[:i])
		}
		switch s {
		case "text/rtf":
			return "application/rtf"
		case "image/jpg", "image/pjpeg":
			return "image/jpeg"
		case "application/x-pdf":
			return "application/pdf"
		case "image/tif":
			return "image/tiff"
		}
		return s
	}
	return canon(a) == canon(b)
}

// edData is decoded encapsulated data.
type edData struct {
	Attachment
	// declared is the type ED-2/ED-3 named ("" when none or not a media type); the
	// Attachment's contentType differs from it when the data said otherwise.
	declared string
	// encoding is ED-4 as the sender wrote it, when it is not one of table 0299's.
	unknownEncoding string
}

// decodeED reads ED-2..ED-5 (ED-1, the source application, names no part of the data): the data decoded per ED-4 (Base64, Hex, A for ASCII text;
// anything else is kept as the text it is) and re-encoded as canonical Base64, and the
// contentType: declared unless missing or contradicted by a magic number, else sniffed. ok is
// false when there is no data or it does not decode as ED-4 says.
func decodeED(v Value) (ed edData, ok bool) {
	// ED-5 is the last component: separators after it were data the sender did not escape.
	data := textFrom(v, 5)
	if strings.TrimSpace(data) == "" {
		return edData{}, false
	}
	var raw []byte
	switch enc := strings.ToUpper(strings.TrimSpace(v.Get(4))); enc {
	case "BASE64", "B64":
		var canonical bool
		if raw, canonical, ok = decodeBase64(data); !ok {
			return edData{}, false
		}
		if canonical {
			ed.Data = data // already what FHIR wants: no copy
		}
	case "HEX":
		var err error
		if raw, err = hex.DecodeString(strings.Join(strings.Fields(data), "")); err != nil {
			return edData{}, false
		}
	case "A", "ASCII", "":
		raw = []byte(data)
	default:
		ed.unknownEncoding = v.Get(4)
		raw = []byte(data)
	}
	if ed.Data == "" {
		ed.Data = base64.StdEncoding.EncodeToString(raw)
	}
	ed.declared = mediaType(v.Get(2), v.Get(3))
	sniffed, certain := sniffMedia(raw)
	switch {
	case ed.declared == "" || ed.declared == "application/octet-stream":
		ed.ContentType = sniffed
	case certain && !sameMedia(sniffed, ed.declared):
		ed.ContentType = sniffed
	default:
		ed.ContentType = ed.declared
	}
	return ed, true
}

// decodeBase64 decodes standard Base64 as senders write it: with or without padding, with
// line breaks or spaces inside. canonical says the input needs no re-encoding.
func decodeBase64(s string) (raw []byte, canonical bool, ok bool) {
	clean := s
	if strings.ContainsAny(s, " \t\r\n") {
		clean = strings.Join(strings.Fields(s), "")
	}
	if raw, err := base64.StdEncoding.DecodeString(clean); err == nil {
		return raw, clean == s, true
	}
	if raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(clean, "=")); err == nil {
		return raw, false, true
	}
	return nil, false, false
}

// urlMediaTypes are the file extensions a reference pointer's URL commonly ends in.
var urlMediaTypes = map[string]string{
	".pdf": "application/pdf", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
	".tif": "image/tiff", ".tiff": "image/tiff", ".html": "text/html", ".htm": "text/html", ".txt": "text/plain",
	".xml": "application/xml", ".rtf": "application/rtf", ".dcm": "application/dicom",
}

// rpMediaType is an RP's media type: RP-3/RP-4, else what the pointer's file extension says.
func rpMediaType(pointer, typ, sub string) string {
	if t := mediaType(typ, sub); t != "" {
		return t
	}
	p := pointer
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	return urlMediaTypes[strings.ToLower(path.Ext(p))]
}

// isDocument reports whether an attachment of this type (and v2 type of data) is a rendered
// document — what DiagnosticReport.presentedForm holds — rather than an image or signal
// that is itself a result.
func isDocument(contentType, typeOfData string) bool {
	if strings.EqualFold(strings.TrimSpace(typeOfData), "SD") { // table 0191: scanned document
		return true
	}
	ct := contentType
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	switch ct {
	case "application/pdf", "application/rtf", "application/xml", "application/msword", "application/postscript",
		"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "multipart/x-hl7-cda-level-one":
		return true
	}
	return strings.HasPrefix(ct, "text/")
}
