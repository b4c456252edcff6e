/* A tiny HTTP server for containerd node tests: answers every request on :8080 with
 * "hello from <hostname>" and exits on SIGTERM. Built static, it is a whole image. */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void quit(int signum) {
    (void)signum;
    _exit(0);
}

int main(void) {
    signal(SIGTERM, quit);
    signal(SIGINT, quit);
    int server = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_port = htons(8080);
    if (bind(server, (struct sockaddr *)&address, sizeof address) != 0 || listen(server, 16) != 0) {
        perror("listen on :8080");
        return 1;
    }
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    char body[320];
    int body_length = snprintf(body, sizeof body, "hello from %s\n", host);
    char response[512];
    int length = snprintf(response, sizeof response,
                          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                          "Connection: close\r\n\r\n%s", body_length, body);
    for (;;) {
        int client = accept(server, NULL, NULL);
        if (client < 0) {
            continue;
        }
        char request[2048];
        (void)read(client, request, sizeof request);
        (void)write(client, response, (size_t)length);
        close(client);
    }
}
