package ctl

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tessera-survey/tessera/bundle"
	tesserav1 "github.com/tessera-survey/tessera/gen/tessera/v1"
)

const bundleUse = `bundle import FILE [--reply REPLY]
       bundle export --upstream FILE [--max-mb N]     (on a hub)
       bundle import --upstream REPLY                  (on a hub)

import carries a device's bundle (fieldapp bundle export FILE, brought on a USB
stick) to the server or hub this surveyctl is signed in to, as a lead of the
device's project. The server merges it as the device's sync would and
writes the reply (default FILE.reply): take it back to the device, which
imports it with "fieldapp bundle import REPLY". A bundle altered, cut
short, made for another server, signed by another device or of a revoked
device is refused whole. Importing the same bundle twice is harmless.

A hub with no link to central sends its camp's changes up the same way:
"surveyctl --server HUB bundle export --upstream FILE" (what central lacks,
sealed to it and signed with the hub's key), then at central "surveyctl
--server CENTRAL bundle import FILE --reply REPLY", and back at the hub
"surveyctl --server HUB bundle import --upstream REPLY" (central's changes,
forms, and its devices of the hub's scope: revocations and wipes reach the
hub's devices from there).`

func (c *cli) bundle(args []string) error {
	if len(args) > 0 && args[0] == "export" {
		return c.bundleExportUpstream(args[1:])
	}
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprintf(c.stderr, "Usage: surveyctl %s\n", bundleUse)
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			return nil
		}
		return errors.New("bundle: the subcommand is import")
	}
	fs := flag.NewFlagSet("bundle import", flag.ContinueOnError)
	replyFile := fs.String("reply", "", "where to write the reply for the device (default FILE.reply)")
	up := fs.Bool("upstream", false, "on a hub: FILE is the upstream's reply to the hub's bundle; apply it")
	pos, err := c.parse(fs, bundleUse, args[1:], 1)
	if err != nil {
		return err
	}
	if *up {
		return c.bundleImportUpstream(pos[0])
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return fmt.Errorf("bundle import: %w", err)
	}
	raw, err := bundle.ReadFile(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("bundle import %s: %w", pos[0], err)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := cl.Sync().ImportBundle(c.ctx, &tesserav1.ImportBundleRequest{Bundle: raw})
	if err != nil {
		return fmt.Errorf("bundle import %s: %w", pos[0], err)
	}
	out := *replyFile
	if out == "" {
		out = pos[0] + ".reply"
	}
	if err := writeWhole(out, res.Reply); err != nil {
		return fmt.Errorf("bundle import: %w", err)
	}
	fmt.Fprintf(c.stdout, "bundle of device %s (project %s): %d changes, %d new here; reply with %d changes and %d forms written to %s\n",
		res.Device, res.Project, res.Pushed, res.Applied, res.Pulled, res.Forms, out)
	return nil
}

func (c *cli) bundleExportUpstream(args []string) error {
	fs := flag.NewFlagSet("bundle export", flag.ContinueOnError)
	up := fs.Bool("upstream", false, "required: the hub's bundle for its upstream")
	maxMB := fs.Int("max-mb", bundle.MaxSize>>20, "the largest file, in MiB (more changes go to FILE.2, ...)")
	pos, err := c.parse(fs, bundleUse, args, 1)
	if err != nil {
		return err
	}
	if !*up {
		return errors.New("bundle export: only a hub exports, for its upstream (--upstream); devices use fieldapp bundle export")
	}
	if *maxMB < 1 || *maxMB > bundle.MaxSize>>20 {
		return fmt.Errorf("bundle export: --max-mb between 1 and %d", bundle.MaxSize>>20)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := cl.Sync().ExportUpstreamBundle(c.ctx, &tesserav1.ExportUpstreamBundleRequest{MaxBytes: uint32(*maxMB << 20)})
	if err != nil {
		return fmt.Errorf("bundle export: %w", err)
	}
	var names []string
	for i, p := range res.Parts {
		name := pos[0]
		if i > 0 {
			name = fmt.Sprintf("%s.%d", pos[0], i+1)
		}
		if err := writeWhole(name, p); err != nil {
			return fmt.Errorf("bundle export: %w", err)
		}
		names = append(names, name)
	}
	fmt.Fprintf(c.stdout, "the hub's bundle for its upstream (%d changes) written to %v; nothing is marked sent until its reply is imported\n", res.Changes, names)
	if res.More {
		fmt.Fprintln(c.stderr, "more changes wait: export again once this bundle's reply is imported")
	}
	return nil
}

func (c *cli) bundleImportUpstream(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("bundle import: %w", err)
	}
	raw, err := bundle.ReadFile(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("bundle import %s: %w", file, err)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	res, err := cl.Sync().ImportUpstreamReply(c.ctx, &tesserav1.ImportUpstreamReplyRequest{Reply: raw})
	if err != nil {
		return fmt.Errorf("bundle import %s: %w", file, err)
	}
	fmt.Fprintf(c.stdout, "%s: %d changes received (%d new), %d forms, %d devices; %d changes still waiting to go up\n",
		file, res.Received, res.Applied, res.Forms, res.Devices, res.Pending)
	return nil
}

// writeWhole writes a file whole or not at all.
func writeWhole(name string, b []byte) error {
	tmp := filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+".partial")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
