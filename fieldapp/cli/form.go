package cli

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/tessera-survey/tessera/forms"
)

func (c *cli) form(args []string) error {
	if len(args) == 0 || args[0] != "list" {
		fmt.Fprint(c.stderr, "Usage: fieldapp [--data DIR] form list [--json]\n")
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			return nil
		}
		return errors.New("form: the subcommand is list")
	}
	fs := flag.NewFlagSet("form list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := c.parse(fs, "form list [--json]", args[1:], 0, 0); err != nil {
		return helpOK(err)
	}
	d, err := c.open()
	if err != nil {
		return err
	}
	defer d.Close()
	list, err := d.FormList(c.ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if list == nil {
			list = []forms.Info{}
		}
		return writeJSON(c.stdout, list)
	}
	if len(list) == 0 {
		fmt.Fprintln(c.stdout, "no forms on this device yet: sync to fetch the published ones")
	}
	for _, i := range list {
		fmt.Fprintf(c.stdout, "%s\t%s\t%d questions\t%s\n", i.Key(), i.Title, i.Questions, strings.Join(i.Languages, ", "))
	}
	return nil
}
