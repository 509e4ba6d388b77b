package ui

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Serve serves ui on ln until ctx ends, then locks the store.
func Serve(ctx context.Context, ln net.Listener, ui *UI, ready func(url string)) error {
	srv := &http.Server{Handler: ui, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				srv.Shutdown(sctx)
				cancel()
				close(done)
				return
			case now := <-t.C:
				ui.IdleCheck(now)
			}
		}
	}()
	if ready != nil {
		ready("http://" + ln.Addr().String())
	}
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		err = nil
	}
	if cerr := ui.Close(); err == nil {
		err = cerr
	}
	return err
}
