package main

import (
	"fmt"
	"time"

	"github.com/nhp/interop/internal/config"
)

type tokenCmd struct {
	Tenant  string        `default:"default" help:"Tenant the token is confined to."`
	Scope   string        `default:"system/*.cruds interop/admin" help:"Space-separated scopes (SMART v2 system scopes, interop/admin)."`
	Subject string        `default:"dev" help:"Subject (sub claim), shown in logs."`
	TTL     time.Duration `name:"ttl" default:"1h" help:"Lifetime."`
}

func (t tokenCmd) Run(cfg *config.Config) error {
	s, err := signer(*cfg)
	if err != nil {
		return err
	}
	tok, err := s.Issue(t.Subject, t.Tenant, t.Scope, t.TTL)
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}
