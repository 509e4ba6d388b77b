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

Carries a device's bundle (fieldapp bundle export FILE, brought on a USB
stick) to the server or hub this surveyctl is signed in to, as a lead of the
device's project. The server merges it as the device's sync would and
writes the reply (default FILE.reply): take it back to the device, which
imports it with "fieldapp bundle import REPLY". A bundle altered, cut
short, made for another server, signed by another device or of a revoked
device is refused whole. Importing the same bundle twice is harmless.`

func (c *cli) bundle(args []string) error {
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprintf(c.stderr, "Usage: surveyctl %s\n", bundleUse)
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			return nil
		}
		return errors.New("bundle: the subcommand is import")
	}
	fs := flag.NewFlagSet("bundle import", flag.ContinueOnError)
	replyFile := fs.String("reply", "", "where to write the reply for the device (default FILE.reply)")
	pos, err := c.parse(fs, bundleUse, args[1:], 1)
	if err != nil {
		return err
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
	tmp := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".partial")
	if err := os.WriteFile(tmp, res.Reply, 0o600); err != nil {
		return fmt.Errorf("bundle import: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("bundle import: %w", err)
	}
	fmt.Fprintf(c.stdout, "bundle of device %s (project %s): %d changes, %d new here; reply with %d changes and %d forms written to %s\n",
		res.Device, res.Project, res.Pushed, res.Applied, res.Pulled, res.Forms, out)
	return nil
}
