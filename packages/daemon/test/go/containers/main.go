// A containerd 1.6 Go client program for issue 10's tests: containers with a JSON extension, exactly as an
// integration written in Go stores its metadata. The extension is a Go struct registered with typeurl, so the
// client marshals it with encoding/json (typeurl's rule for types that are not protobuf messages) under the type
// URL it was registered with, and decodes it back through the same registry.
//
// Usage: containers -address SOCK -namespace NS COMMAND ARGS...
//
//	version                             Client.Version, Client.Server, then NamespaceService Create of NS and List
//	create ID OWNERSHIP [KEY=VALUE...]  NewContainer with WithNewSpec(), labels, WithContainerExtension
//	get ID                              Container.Info, Container.Extensions(), each one decoded with typeurl
//	update ID OWNERSHIP|null            Container.Update replacing (or, with null, removing) the extension
//	store-update ID OWNERSHIP           the same through Client.ContainerService().Update (containers.Store): the
//	                                    error keeps its class there, while Container.Update converts it from gRPC
//	                                    twice (containerd 1.6's container.go), so every refusal reads as Unknown
//	list [FILTER...]                    Client.Containers(filters...): the ids
//	delete ID                           Container.Delete
//
// OWNERSHIP is a JSON object decoded strictly into the Ownership struct, then re-encoded by the client. Each
// command prints one JSON object on stdout; a failure prints {"error", "errdef"} (the errdefs class the client
// sees) and exits 3.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/typeurl"
)

// ExtensionName is both the key in Container.Extensions and the type URL the struct is registered with.
const ExtensionName = "acme.io/ownership"

// Ownership is the integration's metadata.
type Ownership struct {
	Team   string   `json:"team"`
	Tier   int      `json:"tier"`
	Oncall []string `json:"oncall,omitempty"`
	Note   string   `json:"note,omitempty"`
}

func init() {
	typeurl.Register(&Ownership{}, "acme.io", "ownership")
}

type extensionOut struct {
	TypeURL string     `json:"typeUrl"`
	Value   string     `json:"value"`
	Decoded *Ownership `json:"decoded,omitempty"`
	// DecodeError is set when typeurl could not decode the stored value into the registered type.
	DecodeError string `json:"decodeError,omitempty"`
}

type containerOut struct {
	ID          string                  `json:"id"`
	Image       string                  `json:"image"`
	Runtime     string                  `json:"runtime"`
	Labels      map[string]string       `json:"labels"`
	SpecTypeURL string                  `json:"specTypeUrl"`
	Extensions  map[string]extensionOut `json:"extensions"`
}

func errdefOf(err error) string {
	switch {
	case errdefs.IsInvalidArgument(err):
		return "invalid-argument"
	case errdefs.IsNotFound(err):
		return "not-found"
	case errdefs.IsAlreadyExists(err):
		return "already-exists"
	case errdefs.IsFailedPrecondition(err):
		return "failed-precondition"
	case errdefs.IsNotImplemented(err):
		return "not-implemented"
	case errdefs.IsUnavailable(err):
		return "unavailable"
	default:
		return "unknown"
	}
}

func fail(err error) {
	out, _ := json.Marshal(map[string]string{"error": err.Error(), "errdef": errdefOf(err)})
	fmt.Println(string(out))
	os.Exit(3)
}

func print(v interface{}) {
	out, err := json.Marshal(v)
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func parseOwnership(arg string) *Ownership {
	if arg == "null" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(arg))
	dec.DisallowUnknownFields()
	var o Ownership
	if err := dec.Decode(&o); err != nil {
		fmt.Fprintf(os.Stderr, "OWNERSHIP: %v\n", err)
		os.Exit(2)
	}
	return &o
}

func describe(ctx context.Context, c containerd.Container) containerOut {
	info, err := c.Info(ctx)
	if err != nil {
		fail(err)
	}
	exts, err := c.Extensions(ctx)
	if err != nil {
		fail(err)
	}
	out := containerOut{ID: info.ID, Image: info.Image, Runtime: info.Runtime.Name, Labels: info.Labels, Extensions: map[string]extensionOut{}}
	if info.Spec != nil {
		out.SpecTypeURL = info.Spec.TypeUrl
	}
	for name, any := range exts {
		any := any
		e := extensionOut{TypeURL: any.TypeUrl, Value: string(any.Value)}
		if v, err := typeurl.UnmarshalAny(&any); err != nil {
			e.DecodeError = err.Error()
		} else if o, ok := v.(*Ownership); ok {
			e.Decoded = o
		} else {
			e.DecodeError = fmt.Sprintf("decoded to %T", v)
		}
		out.Extensions[name] = e
	}
	return out
}

func main() {
	address := flag.String("address", "", "berthd's (or containerd's) gRPC socket")
	namespace := flag.String("namespace", "default", "containerd namespace")
	flag.Parse()
	args := flag.Args()
	if *address == "" || len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: containers -address SOCK [-namespace NS] create|get|update|list|delete ...")
		os.Exit(2)
	}
	client, err := containerd.New(*address)
	if err != nil {
		fail(err)
	}
	defer client.Close()
	ctx := namespaces.WithNamespace(context.Background(), *namespace)

	switch cmd, rest := args[0], args[1:]; {
	case cmd == "version" && len(rest) == 0:
		v, err := client.Version(ctx)
		if err != nil {
			fail(err)
		}
		server, err := client.Server(ctx)
		if err != nil {
			fail(err)
		}
		if err := client.NamespaceService().Create(ctx, *namespace, map[string]string{"created-by": "go"}); err != nil && !errdefs.IsAlreadyExists(err) {
			fail(err)
		}
		nss, err := client.NamespaceService().List(ctx)
		if err != nil {
			fail(err)
		}
		print(map[string]interface{}{"version": v.Version, "revision": v.Revision, "uuid": server.UUID, "namespaces": nss})
	case cmd == "create" && len(rest) >= 2:
		labels := map[string]string{}
		for _, kv := range rest[2:] {
			k, v, _ := strings.Cut(kv, "=")
			labels[k] = v
		}
		opts := []containerd.NewContainerOpts{containerd.WithNewSpec(), containerd.WithContainerLabels(labels)}
		if o := parseOwnership(rest[1]); o != nil {
			opts = append(opts, containerd.WithContainerExtension(ExtensionName, o))
		}
		c, err := client.NewContainer(ctx, rest[0], opts...)
		if err != nil {
			fail(err)
		}
		print(describe(ctx, c))
	case cmd == "get" && len(rest) == 1:
		c, err := client.LoadContainer(ctx, rest[0])
		if err != nil {
			fail(err)
		}
		print(describe(ctx, c))
	case cmd == "update" && len(rest) == 2:
		c, err := client.LoadContainer(ctx, rest[0])
		if err != nil {
			fail(err)
		}
		o := parseOwnership(rest[1])
		var opt containerd.UpdateContainerOpts
		if o != nil {
			// WithContainerExtension is a NewContainerOpts; Update takes the same function type.
			opt = containerd.UpdateContainerOpts(containerd.WithContainerExtension(ExtensionName, o))
		} else {
			opt = func(_ context.Context, _ *containerd.Client, c *containers.Container) error {
				delete(c.Extensions, ExtensionName)
				return nil
			}
		}
		if err := c.Update(ctx, opt); err != nil {
			fail(err)
		}
		print(describe(ctx, c))
	case cmd == "store-update" && len(rest) == 2:
		c, err := client.LoadContainer(ctx, rest[0])
		if err != nil {
			fail(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			fail(err)
		}
		if err := containerd.WithContainerExtension(ExtensionName, parseOwnership(rest[1]))(ctx, client, &info); err != nil {
			fail(err)
		}
		if _, err := client.ContainerService().Update(ctx, info); err != nil {
			fail(err)
		}
		print(describe(ctx, c))
	case cmd == "list":
		cs, err := client.Containers(ctx, rest...)
		if err != nil {
			fail(err)
		}
		ids := []string{}
		for _, c := range cs {
			ids = append(ids, c.ID())
		}
		print(map[string][]string{"ids": ids})
	case cmd == "delete" && len(rest) == 1:
		c, err := client.LoadContainer(ctx, rest[0])
		if err != nil {
			fail(err)
		}
		if err := c.Delete(ctx); err != nil {
			fail(err)
		}
		print(map[string]string{"deleted": rest[0]})
	default:
		fmt.Fprintf(os.Stderr, "unknown command or wrong arguments: %s\n", strings.Join(args, " "))
		os.Exit(2)
	}
}
