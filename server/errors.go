package server

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect/v2"

	"github.com/tessera-survey/tessera/auth"
	"github.com/tessera-survey/tessera/forms"
	"github.com/tessera-survey/tessera/media"
	"github.com/tessera-survey/tessera/survey"
	"github.com/tessera-survey/tessera/syncengine"
)

// codes is the one table from domain errors to Connect codes. Errors in it
// describe the caller's own input, so their text is safe to return; anything
// else is logged here and reaches the client as a bare "internal error".
var codes = []struct {
	err  error
	code connect.Code
}{
	{syncengine.ErrInvalid, connect.CodeInvalidArgument},
	{syncengine.ErrTooLarge, connect.CodeResourceExhausted},
	{syncengine.ErrNotFound, connect.CodeNotFound},
	{syncengine.ErrDeleted, connect.CodeFailedPrecondition},
	{syncengine.ErrNoConflict, connect.CodeFailedPrecondition},
	{forms.ErrExists, connect.CodeAlreadyExists},
	{auth.ErrUnauthenticated, connect.CodeUnauthenticated},
	{auth.ErrBadCredentials, connect.CodeUnauthenticated},
	{auth.ErrThrottled, connect.CodeResourceExhausted},
	{auth.ErrDenied, connect.CodePermissionDenied},
	{auth.ErrRevoked, connect.CodePermissionDenied},
	{auth.ErrCodeRejected, connect.CodePermissionDenied},
	{auth.ErrExists, connect.CodeAlreadyExists},
	{auth.ErrNotFound, connect.CodeNotFound},
	{auth.ErrInvalid, connect.CodeInvalidArgument},
	{forms.ErrUnknownForm, connect.CodeNotFound},
	{forms.ErrNotXLSX, connect.CodeInvalidArgument},
	{forms.ErrNotXForm, connect.CodeInvalidArgument},
	{media.ErrTooLarge, connect.CodeResourceExhausted},
	{media.ErrBadChunk, connect.CodeDataLoss},
	{media.ErrBadFile, connect.CodeDataLoss},
	{media.ErrBadRef, connect.CodeInvalidArgument},
	{media.ErrNotFound, connect.CodeNotFound},
	{media.ErrIncomplete, connect.CodeFailedPrecondition},
	{survey.ErrMediaNotNamed, connect.CodeFailedPrecondition},
	{survey.ErrNotHub, connect.CodeFailedPrecondition},
	{survey.ErrPolicyUpstream, connect.CodeFailedPrecondition},
	{survey.ErrNoUpstreamKeys, connect.CodeFailedPrecondition},
	{survey.ErrHubKeyMissing, connect.CodeFailedPrecondition},
	{context.Canceled, connect.CodeCanceled},
	{context.DeadlineExceeded, connect.CodeDeadlineExceeded},
}

func toConnect(ctx context.Context, log *slog.Logger, procedure string, err error) error {
	var ps forms.Problems
	if errors.As(err, &ps) {
		return connect.NewError(connect.CodeInvalidArgument, ps.Error()).WithCause(err)
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return connect.NewError(c.code, err.Error()).WithCause(err)
		}
	}
	log.ErrorContext(ctx, "request failed", "procedure", procedure, "err", err)
	return connect.NewError(connect.CodeInternal, "internal error").WithCause(err)
}
