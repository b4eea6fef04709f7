package main

import (
	"io/fs"
	"testing"
)

// share is the default limit for avail bytes.
func share(avail int64) int64 { return int64(float64(avail) * defaultLimitShare) }

func TestMemoryDefaults(t *testing.T) {
	t.Parallel()
	const gib = 1 << 30
	meminfo := []byte("MemTotal:       25165824 kB\nMemFree:         1000 kB\n") // 24 GiB
	tests := []struct {
		name  string
		env   map[string]string
		files map[string]string
		want  memorySettings
	}{
		{
			name:  "machine memory",
			files: map[string]string{"/proc/meminfo": string(meminfo), "/sys/fs/cgroup/memory.max": "max\n"},
			want:  memorySettings{gogc: 30, limit: share(24 * gib), avail: 24 * gib},
		},
		{
			name:  "cgroup v2 limit below the machine's",
			files: map[string]string{"/proc/meminfo": string(meminfo), "/sys/fs/cgroup/memory.max": "2147483648\n"},
			want:  memorySettings{gogc: 30, limit: share(2 * gib), avail: 2 * gib},
		},
		{
			name:  "cgroup v1 without a limit",
			files: map[string]string{"/proc/meminfo": string(meminfo), "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712"},
			want:  memorySettings{gogc: 30, limit: share(24 * gib), avail: 24 * gib},
		},
		{
			name:  "GOMEMLIMIT set",
			env:   map[string]string{"GOMEMLIMIT": "1GiB"},
			files: map[string]string{"/proc/meminfo": string(meminfo)},
			want:  memorySettings{gogc: 30},
		},
		{
			name:  "GOGC set",
			env:   map[string]string{"GOGC": "100"},
			files: map[string]string{"/proc/meminfo": string(meminfo)},
			want:  memorySettings{limit: share(24 * gib), avail: 24 * gib},
		},
		{
			name: "nothing readable",
			want: memorySettings{gogc: 30},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			read := func(p string) ([]byte, error) {
				if v, ok := tc.files[p]; ok {
					return []byte(v), nil
				}
				return nil, fs.ErrNotExist
			}
			if got := memoryDefaults(env, read); got != tc.want {
				t.Errorf("memoryDefaults() = %+v, want %+v", got, tc.want)
			}
		})
	}
}
