package main

import "testing"

func TestSoftMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name, gomemlimit, containerLimit string
		want                             int64
		wantErr                          bool
	}{
		{name: "no limit", want: 0},
		{name: "512 MiB from the downward API", containerLimit: "536870912", want: 483183821},
		{name: "1 GiB as a quantity", containerLimit: "1Gi", want: 966367642},
		{name: "GOMEMLIMIT wins", gomemlimit: "300MiB", containerLimit: "536870912", want: 0},
		{name: "GOMEMLIMIT off still wins", gomemlimit: "off", containerLimit: "536870912", want: 0},
		{name: "GOMEMLIMIT alone", gomemlimit: "300MiB", want: 0},
		{name: "garbage", containerLimit: "lots", wantErr: true},
		{name: "negative", containerLimit: "-536870912", wantErr: true},
		{name: "zero", containerLimit: "0", wantErr: true},
		{name: "a divisor of 1Mi", containerLimit: "512", wantErr: true},
	} {
		got, err := softMemoryLimit(tc.gomemlimit, tc.containerLimit)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: softMemoryLimit(%q, %q) = %d, %v; want %d, error %t", tc.name, tc.gomemlimit, tc.containerLimit, got, err, tc.want, tc.wantErr)
		}
	}
}
