package rtc

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/room"
)

// tokenErr stands in for api's token errors, which rtc reads through
// interfaces only.
type tokenErr struct{}

func (tokenErr) Error() string           { return "token expired" }
func (tokenErr) HTTPStatus() int         { return http.StatusUnauthorized }
func (tokenErr) ProblemType() string     { return ProblemTypeBase + "token-expired" }
func (tokenErr) WWWAuthenticate() string { return `Bearer realm="mediagate", error="invalid_token"` }

// TestProblem: each kind of error becomes its problem, and internal
// errors do not leak their text.
func TestProblem(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		want      Problem
		challenge string
	}{
		{"rtc error", fmt.Errorf("%w: got %q", ErrUnsupportedContentType, "text/plain"),
			Problem{ProblemTypeBase + "unsupported-content-type", "content type is not application/sdp", 415,
				`content type is not application/sdp: got "text/plain"`}, ""},
		{"room error", fmt.Errorf("join r: %w", room.ErrRoomFull),
			Problem{ProblemTypeBase + "room-full", "room is full", 409, "join r: room is full"}, ""},
		{"foreign error with its own type and challenge", fmt.Errorf("room r: %w", tokenErr{}),
			Problem{ProblemTypeBase + "token-expired", "token expired", 401, "room r: token expired"},
			`Bearer realm="mediagate", error="invalid_token"`},
		{"rtc unauthorized", ErrUnauthorized,
			Problem{ProblemTypeBase + "unauthorized", ErrUnauthorized.Error(), 401, ErrUnauthorized.Error()},
			`Bearer realm="mediagate"`},
		{"internal", errors.New("dtls: secret key material"),
			Problem{"about:blank", "Internal Server Error", 500, ""}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			got := writeProblem(rec, tt.err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.want.Status, rec.Code)
			require.Equal(t, ContentTypeProblem, rec.Header().Get("Content-Type"))
			require.Equal(t, tt.challenge, rec.Header().Get("WWW-Authenticate"))
			require.NotContains(t, rec.Body.String(), "secret")
		})
	}
}
