//go:build !race

package hl7v2

const raceEnabled = false
