package main

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediagate/mediagate/configs"
	"github.com/mediagate/mediagate/recorder"
)

func TestRecorderOptionsFormat(t *testing.T) {
	for _, tc := range []struct{ config, want string }{
		{configs.RecordingFormatOpus, recorder.FormatOpus},
		{configs.RecordingFormatM4A, recorder.FormatM4A},
	} {
		cfg := configs.Default()
		cfg.Recording.Format = tc.config
		require.Equal(t, tc.want, recorderOptions(cfg, nil, slog.New(slog.DiscardHandler)).Format, tc.config)
	}
}
