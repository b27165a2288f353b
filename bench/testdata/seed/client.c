#include <stdio.h>
#include <stdlib.h>

#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>
#include <stdlib.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

static int peers[65536];
#define  CONN_NUM (100)
static char buffer[102400];

int main(int argc, char *argv[]) {
   int sockfd, portno, n;
   struct sockaddr_in serv_addr;
   struct hostent *server;
   
   
   
   if (argc < 3) {
      fprintf(stderr,"usage %s hostname port\n", argv[0]);
      exit(0);
   }
	
   portno = atoi(argv[2]);
   
   
	
   server = gethostbyname(argv[1]);
   
   if (server == NULL) {
      fprintf(stderr,"ERROR, no such host\n");
      exit(0);
   }
   
   bzero((char *) &serv_addr, sizeof(serv_addr));
   serv_addr.sin_family = AF_INET;
   bcopy((char *)server->h_addr, (char *)&serv_addr.sin_addr.s_addr, server->h_length);
   serv_addr.sin_port = htons(portno);

   int epfd = epoll_create(CONN_NUM);
   if (epfd < 0)
   {
       perror("epoll_create:");
       exit(1);
   }

   for (int i = 0; i < CONN_NUM; ++i)
   {
       /* Create a socket point */
       sockfd = socket(AF_INET, SOCK_STREAM, 0);

       if (sockfd < 0)
       {
           perror("ERROR opening socket");
           exit(1);
       }
       /* Now connect to the server */
       if (connect(sockfd, (struct sockaddr *)&serv_addr, sizeof(serv_addr)) < 0)
       {
           perror("ERROR connecting");
           exit(1);
       }
       printf("connected, %d\n", sockfd);
       struct epoll_event event;
       memset(&event, 0, sizeof(event));
       event.data.fd = sockfd;
       event.events |= EPOLLIN;
       if (0 != epoll_ctl(epfd, EPOLL_CTL_ADD, sockfd, &event))
       {
           perror("epoll_ctl");
           exit(1);
       }
   }
   uint64_t totalLen = 0;
   time_t startTime = time(NULL);
   for (;;)
   {
        static struct epoll_event event2[CONN_NUM];
        memset(&event2, 0, sizeof(event2));
        int iret = epoll_wait(epfd, event2, CONN_NUM, 100);
        if (iret < 0)
        {
            perror("epoll_wait");
            printf("fuck\n");
            break;
        }
        //printf("%d event occured\n", iret);
        if (iret > 0 )
        {
            for (int i = 0; i < iret; ++i)
            {
                int readLen = read(event2[i].data.fd, buffer, sizeof(buffer));
                if (readLen > 0)
                {
                    totalLen += readLen;
                }
                else
                {
                    int clientfd = event2[i].data.fd;
                    
                    struct epoll_event event;
                    memset(&event, 0, sizeof(event));
                    event.data.fd = clientfd;
                    event.events |= EPOLLIN;
                    if (0 != epoll_ctl(epfd, EPOLL_CTL_DEL, clientfd, &event))
                    {
                        perror("epoll_ctl");
                        exit(1);
                    }
                    close(clientfd);
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

   return 0;
}
