#include <netdb.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <string.h>
#include <unistd.h>
#include <stdlib.h>
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <pthread.h>

#define MAX_CONN_NUM (10000)

static char buffer[102400] = {0};

/** Returns true on success, or false if there was an error */
int SetSocketBlockingEnabled(int fd, int blocking)
{
   if (fd < 0) return -1;


   int flags = fcntl(fd, F_GETFL, 0);
   if (flags == -1) return -1;
   flags = blocking > 0 ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK);
   return (fcntl(fd, F_SETFL, flags) == 0) ? 0 : -1;

}

int main(int argc, char *argv[])
{
    int sockfd, newsockfd, portno, clilen;
    struct sockaddr_in serv_addr, cli_addr;
    int n;
    int epfd;

    /* First call to socket() function */
    sockfd = socket(AF_INET, SOCK_STREAM, 0);

    if (sockfd < 0)
    {
        perror("ERROR opening socket");
        exit(1);
    }

    /* Initialize socket structure */
    bzero((char *)&serv_addr, sizeof(serv_addr));
    portno = 50012;

    serv_addr.sin_family = AF_INET;
    serv_addr.sin_addr.s_addr = INADDR_ANY;
    serv_addr.sin_port = htons(portno);

    /* Now bind the host address using bind() call.*/
    if (bind(sockfd, (struct sockaddr *)&serv_addr, sizeof(serv_addr)) < 0)
    {
        perror("ERROR on binding");
        exit(1);
    }

    /* Now start listening for the clients, here process will
     * go in sleep mode and will wait for the incoming connection
     */

    listen(sockfd, 5);
    clilen = sizeof(cli_addr);

    epfd = epoll_create(100);
    if (epfd < 0)
    {
        perror("epoll_create:");
        exit(1);
    }
    struct epoll_event event;
    memset(&event, 0, sizeof(event));
    event.data.fd = sockfd;
    event.events |= EPOLLIN;
    if (0 != epoll_ctl(epfd, EPOLL_CTL_ADD, sockfd, &event))
    {
        perror("epoll_ctl");
        exit(1);
    }
    uint64_t totalLen = 0;
    time_t startTime = time(NULL);
    for (;;)
    {
        static struct epoll_event event2[MAX_CONN_NUM];
        memset(&event2, 0, sizeof(event2));
        int iret = epoll_wait(epfd, event2, sizeof(event2)/sizeof(event2[0]), 100);
        if (iret < 0)
        {
            perror("epoll_wait");
            printf("fuck\n");
            break;
        }
        for (int i = 0; i < iret; ++i)
        {
            if (sockfd == event2[i].data.fd)
            {
                newsockfd = accept(sockfd, (struct sockaddr *)&cli_addr, &clilen);
                if (newsockfd < 0)
                {
                    perror("ERROR on accept");
                    printf("you\n");
                    break;
                }
                SetSocketBlockingEnabled(newsockfd, 0);
                printf("new socket:%d\n", newsockfd);

                struct epoll_event event;
                memset(&event, 0, sizeof(event));
                event.data.fd = newsockfd;
                event.events |= EPOLLOUT;
                if (0 != epoll_ctl(epfd, EPOLL_CTL_ADD, newsockfd, &event))
                {
                    perror("epoll_ctl add newsockfd");
                    exit(1);
                }
            }
            else
            {
                int wrLen = write(event2[i].data.fd, buffer, sizeof(buffer));
                if (wrLen < 0)
                {
                    if (errno != EAGAIN && errno != EWOULDBLOCK)
                    {
                        
                        struct epoll_event event;
                        memset(&event, 0, sizeof(event));
                        event.data.fd = event2[i].data.fd;
                        event.events |= EPOLLOUT;
                        if (0 != epoll_ctl(epfd, EPOLL_CTL_DEL, event2[i].data.fd, &event))
                        {
                            perror("epoll_ctl");
                            exit(1);
                        }
                        close(event2[i].data.fd);
                        printf("close %d\n", event2[i].data.fd);
                    }
                }
                else
                {
                    totalLen += wrLen;
                } 
            }
            
        }
       
        time_t current = time(NULL);
        if (current > startTime && (current - startTime) > 30)
        {
            printf("avg bindwidth:%.2fMbps\n", ((double)totalLen) / (current-startTime)/1000000*8);
            startTime = current;
            totalLen = 0;
        } 
    }
    printf("closing...\n");
    
    return 0;
}
