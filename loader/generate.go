package loader

//go:generate go tool bpf2go -tags linux -target bpfel -type route_key -type route -type tunnel -type endpoint_key -type tunnel_stats -type tunnel_l2 -type reason -type tunnel_type -type route_flags -type tunnel_flags -type control_port -type route4_key -type native_route -type traffic_class -type class_stats -type queue_stats -type class_flags -type class_flow_key -type shaper datapath ../bpf/datapath.c -- -O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu
