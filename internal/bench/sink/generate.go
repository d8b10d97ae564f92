package sink

//go:generate go tool bpf2go -tags linux -target bpfel sink sink.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu
