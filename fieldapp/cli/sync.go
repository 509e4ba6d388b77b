package cli

import (
	"flag"
	"fmt"
	"strings"

	"github.com/tessera-survey/tessera/fieldapp"
	"github.com/tessera-survey/tessera/internal/cliutil"
)

func (c *cli) sync(args []string) error {
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	server := fs.String("server", "", "sync with this URL instead of the configured server (and remember it)")
	lines := fs.Bool("progress", false, "print a progress line per round trip to stderr, also when it is not a terminal (the log of an unattended sync)")
	if _, err := c.parse(fs, "sync [--json] [--server URL] [--progress]", args, 0, 0); err != nil {
		return helpOK(err)
	}
	d, err := c.open()
	if err != nil {
		return err
	}
	defer d.Close()
	if *server != "" {
		if err := d.SetServer(c.ctx, *server); err != nil {
			return fmt.Errorf("sync: --server: %w", err)
		}
	}
	tty := cliutil.IsTerminal(c.stderr)
	res, err := d.Sync(c.ctx, "", func(r fieldapp.SyncResult) {
		files := ""
		if r.Media.Progress > 0 {
			files = fmt.Sprintf(", files: %d sent (%s)", r.Media.Files, cliutil.Bytes(r.Media.Progress))
		}
		if *lines {
			fmt.Fprintf(c.stderr, "sync: %d sent, %d received, %s%s\n", r.Pushed, r.Pulled, cliutil.Bytes(r.BytesSent+r.BytesReceived), files)
			return
		}
		if tty && !*asJSON {
			fmt.Fprintf(c.stderr, "\rsyncing: %d sent, %d received, %s%s", r.Pushed, r.Pulled, cliutil.Bytes(r.BytesSent+r.BytesReceived), files)
		}
	})
	if tty && !*asJSON && !*lines {
		fmt.Fprint(c.stderr, "\r\033[K")
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(c.stderr, "warning:", w)
	}
	res.UnlockMS = float64(d.Opened().Unlock.Microseconds()) / 1000
	res.OpenMS = float64(d.Opened().Store.Microseconds()) / 1000
	if err != nil {
		return fmt.Errorf("sync with %s: %w (what was sent or received before the error is kept; sync again to resume)", res.Server, err)
	}
	if *asJSON {
		return writeJSON(c.stdout, res)
	}
	fmt.Fprintf(c.stdout, "synced with %s: pushed %d changes, pulled %d (%d new) in %d round trips; %s sent, %s received, %.0f ms\n",
		res.Server, res.Pushed, res.Pulled, res.Applied, res.RoundTrips, cliutil.Bytes(res.BytesSent), cliutil.Bytes(res.BytesReceived), res.DurationMS)
	if res.Wiped {
		fmt.Fprintln(c.stdout, "this device was wiped at the server's request: everything it held had been sent; its store is erased")
	}
	if res.ResentAll {
		fmt.Fprintln(c.stdout, "the server had lost data: everything on this device was sent again")
	}
	if m := res.Media; m.Files+m.Waiting > 0 {
		fmt.Fprintf(c.stdout, "files: %d on the server (%s sent), %d still to send\n", m.Files, cliutil.Bytes(m.Bytes), m.Waiting)
	}
	if len(res.FormsFetched) > 0 {
		fmt.Fprintf(c.stdout, "new forms: %s\n", strings.Join(res.FormsFetched, ", "))
	}
	if k := res.Kept; k != nil {
		fmt.Fprintf(c.stdout, "project policy: %d sent records removed from this device now (%d in all); it holds %d (%d not yet sent)\n",
			k.Removed, k.RemovedTotal, k.Holding, k.Unsent)
	}
	return nil
}
