/*
 * The pause program of the test node's Pod sandboxes (testenv's
 * PAUSE_IMAGE): holds the Pod's namespaces open and does nothing else. As
 * PID 1 of the Pod it reaps re-parented children and exits on SIGINT or
 * SIGTERM (PID 1 ignores signals it has no handler for). Built statically by
 * hack/image.sh; the image is FROM scratch.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { _exit(128 + sig); }

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction on_stop = {.sa_handler = stop};
  struct sigaction on_child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
  if (sigaction(SIGINT, &on_stop, NULL) < 0 || sigaction(SIGTERM, &on_stop, NULL) < 0 ||
      sigaction(SIGCHLD, &on_child, NULL) < 0) {
    return 1;
  }
  for (;;) {
    pause();
  }
}
