// load drives an etcd on loopback: N watch streams, puts at a bounded rate, leases.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"sort"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
)

func main() {
	ep := flag.String("ep", "127.0.0.1:23790", "endpoint")
	watches := flag.Int("watches", 1000, "watch streams")
	rate := flag.Int("rate", 200, "puts per second")
	dur := flag.Duration("for", 30*time.Second, "duration")
	flag.Parse()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{*ep}, DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	for i := 0; i < *watches; i++ {
		// distinct contexts give distinct gRPC watch streams
		wctx := clientv3.WithRequireLeader(metadata.AppendToOutgoingContext(ctx, "stream", fmt.Sprint(i)))
		ch := cli.Watch(wctx, fmt.Sprintf("/k/%d", i%50))
		go func() {
			for range ch {
			}
		}()
	}
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		log.Fatal(err)
	}
	ka, _ := cli.KeepAlive(ctx, lease.ID)
	go func() {
		for range ka {
		}
	}()
	fmt.Println("READY")
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	var lat []time.Duration
	i := 0
	for {
		select {
		case <-ctx.Done():
			sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
			if len(lat) > 0 {
				fmt.Printf("puts %d p50 %v p99 %v max %v\n", len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
			}
			return
		case <-tick.C:
			t0 := time.Now()
			_, err := cli.Put(ctx, fmt.Sprintf("/k/%d", i%50), fmt.Sprint(i), clientv3.WithLease(lease.ID))
			if err == nil {
				lat = append(lat, time.Since(t0))
			}
			i++
		}
	}
}
