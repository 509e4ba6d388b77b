package cli

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tessera-survey/tessera/bundle"
	"github.com/tessera-survey/tessera/internal/cliutil"
)

const bundleUsage = `bundle export FILE [--max-mb N] | bundle import FILE...

export writes what this device's server (or hub) lacks of its changes to
FILE, sealed to the server and signed with this device's key (a device
enrolled with a lead's code, that synced once over the network). Nothing
is marked sent: carry FILE to a lead, who imports it with "surveyctl bundle
import FILE --reply REPLY"; then import REPLY here. When the changes do not
fit in --max-mb (default 64), they go in several files FILE, FILE.2, ...,
each a bundle of its own: import them in order.

import applies a reply from the server: the changes it now holds are no
longer pending, and the team's changes and new forms arrive. Importing a
reply twice, late, or after a network sync is harmless.`

func (c *cli) bundle(args []string) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprintf(c.stderr, "Usage: fieldapp [--data DIR] %s\n", bundleUsage)
		if len(args) == 0 {
			return errors.New("bundle: export or import")
		}
		return nil
	}
	switch args[0] {
	case "export":
		return c.bundleExport(args[1:])
	case "import":
		return c.bundleImport(args[1:])
	}
	return fmt.Errorf("bundle: unknown subcommand %q (export or import)", args[0])
}

func (c *cli) bundleExport(args []string) error {
	fs := flag.NewFlagSet("bundle export", flag.ContinueOnError)
	maxMB := fs.Int("max-mb", bundle.MaxSize>>20, "the largest file to write, in MiB (more changes go to FILE.2, FILE.3, ...)")
	pos, err := c.parse(fs, "bundle export FILE [--max-mb N]", args, 1, 1)
	if err != nil {
		return helpOK(err)
	}
	if *maxMB < 1 || *maxMB > bundle.MaxSize>>20 {
		return fmt.Errorf("bundle export: --max-mb between 1 and %d", bundle.MaxSize>>20)
	}
	d, err := c.open()
	if err != nil {
		return err
	}
	defer d.Close()
	ex, err := d.ExportBundle(c.ctx, *maxMB<<20)
	if err != nil {
		return fmt.Errorf("bundle export: %w", err)
	}
	var names []string
	var total int
	for i, part := range ex.Parts {
		name := pos[0]
		if i > 0 {
			name = fmt.Sprintf("%s.%d", pos[0], i+1)
		}
		if err := writeNew(name, part); err != nil {
			return fmt.Errorf("bundle export: %w", err)
		}
		names = append(names, name)
		total += len(part)
	}
	fmt.Fprintf(c.stdout, "bundle of %d changes written to %s (%s); nothing is marked sent until its reply is imported\n",
		ex.Changes, strings.Join(names, ", "), cliutil.Bytes(int64(total)))
	return nil
}

// writeNew writes a file whole or not at all.
func writeNew(name string, b []byte) error {
	tmp := filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+".partial")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

func (c *cli) bundleImport(args []string) error {
	fs := flag.NewFlagSet("bundle import", flag.ContinueOnError)
	files, err := c.parse(fs, "bundle import FILE...", args, 1, 1<<10)
	if err != nil {
		return helpOK(err)
	}
	d, err := c.open()
	if err != nil {
		return err
	}
	defer d.Close()
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("bundle import: %w", err)
		}
		raw, err := bundle.ReadFile(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("bundle import %s: %w", name, err)
		}
		res, err := d.ImportReply(c.ctx, raw)
		if err != nil {
			return fmt.Errorf("bundle import %s: %w", name, err)
		}
		fmt.Fprintf(c.stdout, "%s: %d changes received (%d new), %d forms added; %d changes still pending\n",
			name, res.Received, res.Applied, res.Forms, res.Pending)
		if res.Wipe {
			fmt.Fprintln(c.stderr, "warning: the server asks this device to be wiped: connect it to the network and sync")
		}
		if res.Kept != nil && res.Kept.Removed > 0 {
			fmt.Fprintf(c.stdout, "%s: the project's policy removed %d sent records from this device\n", name, res.Kept.Removed)
		}
	}
	return nil
}
