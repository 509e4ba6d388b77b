package cli

import (
	"errors"
	"fmt"

	"github.com/tessera-survey/tessera/fieldapp"
)

func (c *cli) pinCmd(args []string) error {
	if len(args) == 0 || args[0] != "change" {
		fmt.Fprint(c.stderr, "Usage: fieldapp [--data DIR] pin change\n\nChanges the PIN the store's key is derived from (the UI must be stopped or locked).\nThe current PIN comes from TESSERA_PIN or the terminal, the new one from\nTESSERA_NEW_PIN or the terminal (twice).\n")
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			return nil
		}
		return errors.New("pin: the subcommand is change")
	}
	if err := c.haveStore(); err != nil {
		return err
	}
	old, err := c.pin(false)
	if err != nil {
		return err
	}
	next, err := c.secret("TESSERA_NEW_PIN", "New PIN", true, errors.New("pin change: give the new PIN on the terminal or in TESSERA_NEW_PIN"))
	if err != nil {
		return err
	}
	if err := fieldapp.ChangePIN(c.ctx, c.dir, old, next); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "PIN changed")
	return nil
}
