package jsontext_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/jsontext"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{
		`{"a":"plain","b":[1,2,{"c":null}]}`,
		`{"name":"été 😀 \u00e9 \ud83d\ude00"}`,
		`{"esc":"\\ud800 is text here, \\u0000 too","q":"\" \\"}`,
		`{"upper":"\uD83D\uDE00"}`,
		`{"broken json but not text":` + "\n",
	} {
		require.NoError(t, jsontext.Check([]byte(ok)), ok)
	}
	for body, want := range map[string]string{
		"{\"a\":\"\xff\"}":                "invalid UTF-8",
		"{\"a\":\"\xed\xa0\x80\"}":        "invalid UTF-8", // a surrogate encoded as UTF-8
		"{\"\xc3\":1}":                    "invalid UTF-8",
		`{"a":"\ud800"}`:                  "lone surrogate \\ud800",
		`{"a":"\ud800x"}`:                 "lone surrogate",
		`{"a":"\ud800\u0041"}`:            "lone surrogate",
		`{"a":"\udc00"}`:                  "lone surrogate \\udc00",
		`{"a":"x\u0000y"}`:                "NUL",
		"{\"a\":\"x\x00y\"}":              "NUL",
		`{"k\u0000":1}`:                   "NUL",
		`{"ok":"\\","bad":"\uDBFF"}`:      "lone surrogate",
		`{"a":["\ud83d\ude00","\ude00"]}`: "lone surrogate",
	} {
		err := jsontext.Check([]byte(body))
		require.Error(t, err, body)
		require.ErrorIs(t, err, jsontext.ErrInvalid)
		require.Contains(t, err.Error(), want, body)
		var te *jsontext.Error
		require.True(t, errors.As(err, &te))
		// Whatever Check accepts encoding/json reads; what it refuses PostgreSQL would.
	}
	var v any
	require.NoError(t, json.Unmarshal([]byte(`{"name":"été \ud83d\ude00"}`), &v))
}

func TestCheckString(t *testing.T) {
	t.Parallel()
	require.NoError(t, jsontext.CheckString("été|x,y"))
	require.ErrorContains(t, jsontext.CheckString("a\x00"), "NUL")
	require.ErrorContains(t, jsontext.CheckString("a\xffb"), "UTF-8")
}
