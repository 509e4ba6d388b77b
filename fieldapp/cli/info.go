package cli

import (
	"flag"
	"fmt"
)

func (c *cli) info(args []string) error {
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parse(fs, "info [--json]", args, 0, 0); err != nil {
		return helpOK(err)
	}
	d, err := c.open()
	if err != nil {
		return err
	}
	defer d.Close()
	server, err := d.Server(c.ctx)
	if err != nil {
		return err
	}
	pending, err := d.Pending(c.ctx)
	if err != nil {
		return err
	}
	project, team, err := d.Enrollment(c.ctx)
	if err != nil {
		return err
	}
	info := map[string]any{"replica": d.ID(), "server": server, "pending": pending, "data": c.dir,
		"project": project, "team": team}
	if *asJSON {
		return writeJSON(c.stdout, info)
	}
	fmt.Fprintf(c.stdout, "device %s\nserver %s\ndata   %s\n%d changes not yet acknowledged by the server\n", info["replica"], server, c.dir, pending)
	return nil
}
