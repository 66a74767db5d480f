// A containerd 1.6 Go client program for issue 11's tests: runs one container the way a Go integration does.
//
// Usage: tasks -address SOCK -namespace NS [-snapshotter NAME] run ID IMAGE ARGS...
//
// It gets IMAGE (already in the daemon), unpacks it into the snapshotter if it is not yet, creates the container
// with WithImage, WithNewSnapshot and WithNewSpec(oci.WithImageConfig, oci.WithProcessArgs), creates its task
// with cio.NewCreator(cio.WithStreams(...)), subscribes to Wait before Start, waits for the exit status, deletes
// the task, then deletes the container with its snapshot. It prints one JSON object: the process's stdout and
// stderr, its pid, exit code and exit time, the task's status while it ran and after it exited; a failure prints
// {"error", "errdef", "step"} and exits 3, after deleting whatever it had created.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
)

// lockedBuffer is written by cio's copy goroutines and read after the task is deleted.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type result struct {
	ID            string `json:"id"`
	Pid           uint32 `json:"pid"`
	StatusCreated string `json:"statusCreated"`
	StatusRunning string `json:"statusRunning"`
	StatusExited  string `json:"statusExited"`
	ExitCode      uint32 `json:"exitCode"`
	ExitedAt      string `json:"exitedAt"`
	Stdout        string `json:"stdout"`
	Stderr        string `json:"stderr"`
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
	case errdefs.IsDeadlineExceeded(err):
		return "deadline"
	default:
		return "unknown"
	}
}

func main() {
	address := flag.String("address", "", "berthd's (or containerd's) gRPC socket")
	namespace := flag.String("namespace", "default", "containerd namespace")
	snapshotter := flag.String("snapshotter", containerd.DefaultSnapshotter, "snapshotter for the rootfs")
	timeout := flag.Duration("timeout", 60*time.Second, "deadline for the whole run")
	flag.Parse()
	args := flag.Args()
	if *address == "" || len(args) < 4 || args[0] != "run" {
		fmt.Fprintln(os.Stderr, "usage: tasks -address SOCK [-namespace NS] [-snapshotter NAME] run ID IMAGE ARGS...")
		os.Exit(2)
	}
	id, ref, procArgs := args[1], args[2], args[3:]

	client, err := containerd.New(*address)
	if err != nil {
		fail("connect", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), *namespace), *timeout)
	defer cancel()
	// Cleanup runs on a context of its own, so it still works after the run's deadline.
	cleanupCtx := namespaces.WithNamespace(context.Background(), *namespace)

	out, step, err := runOnce(ctx, cleanupCtx, client, *snapshotter, id, ref, procArgs)
	if err != nil {
		fail(step, err)
	}
	enc, _ := json.Marshal(out)
	fmt.Println(string(enc))
}

func runOnce(ctx, cleanupCtx context.Context, client *containerd.Client, snapshotter, id, ref string, procArgs []string) (res result, step string, err error) {
	res.ID = id
	image, err := client.GetImage(ctx, ref)
	if err != nil {
		return res, "get image", err
	}
	unpacked, err := image.IsUnpacked(ctx, snapshotter)
	if err != nil {
		return res, "is unpacked", err
	}
	if !unpacked {
		if err := image.Unpack(ctx, snapshotter); err != nil {
			return res, "unpack", err
		}
	}

	container, err := client.NewContainer(ctx, id,
		containerd.WithImage(image),
		containerd.WithSnapshotter(snapshotter),
		containerd.WithNewSnapshot(id+"-snapshot", image),
		containerd.WithNewSpec(oci.WithImageConfig(image), oci.WithProcessArgs(procArgs...)),
	)
	if err != nil {
		return res, "new container", err
	}
	defer func() {
		if derr := container.Delete(cleanupCtx, containerd.WithSnapshotCleanup); derr != nil && err == nil {
			step, err = "delete container", derr
		}
	}()

	var stdout, stderr lockedBuffer
	// No stdin: the process reads EOF at once.
	task, err := container.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, &stdout, &stderr)))
	if err != nil {
		return res, "new task", err
	}
	deleted := false
	defer func() {
		if !deleted {
			// A failure after the task was created: kill it and delete it, so nothing is left behind.
			_ = task.Kill(cleanupCtx, 9)
			_, _ = task.Delete(cleanupCtx, containerd.WithProcessKill)
		}
	}()
	res.Pid = task.Pid()
	if st, err := task.Status(ctx); err != nil {
		return res, "status (created)", err
	} else {
		res.StatusCreated = string(st.Status)
	}

	exitC, err := task.Wait(ctx)
	if err != nil {
		return res, "wait", err
	}
	if err := task.Start(ctx); err != nil {
		return res, "start", err
	}
	if st, err := task.Status(ctx); err != nil {
		return res, "status (started)", err
	} else {
		// RUNNING, or STOPPED already when the process is quick.
		res.StatusRunning = string(st.Status)
	}

	var exit containerd.ExitStatus
	select {
	case exit = <-exitC:
	case <-ctx.Done():
		return res, "wait for exit", ctx.Err()
	}
	code, exitedAt, err := exit.Result()
	if err != nil {
		return res, "exit status", err
	}
	res.ExitCode = code
	res.ExitedAt = exitedAt.UTC().Format(time.RFC3339Nano)
	if st, err := task.Status(ctx); err != nil {
		return res, "status (exited)", err
	} else {
		res.StatusExited = string(st.Status)
	}

	// Delete waits for cio's copies to finish, so the buffers hold all the output afterwards.
	if _, err := task.Delete(ctx); err != nil {
		return res, "delete task", err
	}
	deleted = true
	res.Stdout = stdout.String()
	res.Stderr = stderr.String()
	return res, "", nil
}

func fail(step string, err error) {
	out, _ := json.Marshal(map[string]string{"error": err.Error(), "errdef": errdefOf(err), "step": step})
	fmt.Println(string(out))
	os.Exit(3)
}
