package cli

import (
	"errors"
	"flag"
	"fmt"

	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/syncengine"
)

func (c *cli) init(args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	server := fs.String("server", "", "URL of the server or hub to sync with, e.g. http://127.0.0.1:8080")
	code := fs.String("enroll", "", "enrollment code from the project lead (surveyctl device code); required by servers that require sign-in")
	if _, err := c.parse(fs, "init --server URL [--enroll CODE]", args, 0, 0); err != nil {
		return helpOK(err)
	}
	if *server == "" {
		return errors.New("init: --server URL is required")
	}
	if fieldapp.Exists(c.dir) {
		return fmt.Errorf("init %s: %w: a device store is already there", c.dir, syncengine.ErrExists)
	}
	pin, err := c.pin(true)
	if err != nil {
		return err
	}
	d, err := fieldapp.Init(c.ctx, c.dir, fieldapp.Config{Server: *server, Enroll: *code, PIN: pin})
	if err != nil {
		return err
	}
	defer d.Close()
	fmt.Fprintf(c.stdout, "initialized device %s in %s (server %s)\n", d.ID(), c.dir, *server)
	p, t, err := d.Enrollment(c.ctx)
	if err != nil {
		return err
	}
	if p != "" {
		fmt.Fprintf(c.stdout, "enrolled in project %s%s\n", p, map[bool]string{true: ", team " + t, false: ""}[t != ""])
	}
	return nil
}
