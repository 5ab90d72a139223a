//! The async shell around [`NodeCore`]: bounded queues for inbound messages and client
//! requests, a [`Ticker`], group commit per batch, and client futures. It depends on no
//! runtime: `NodeRunner::run` is a future to spawn on any executor.

use std::collections::HashMap;
use std::fmt;
use std::future::poll_fn;
use std::pin::pin;
use std::task::Poll;

use bytes::Bytes;
use rsm_core::{LogIndex, Membership, NodeId, RejectReason, Replica, Storage, Transport};

use crate::clock::Ticker;
use crate::error::{ClientError, NodeError};
use crate::node_core::{NodeCore, Reply, Ticket};
use crate::status::StatusView;
use crate::thread_runner::{self, NodeThread};
#[cfg(feature = "tokio")]
use crate::tokio_runner::{NodeTask, TokioTicker};
use rsm_core::CompletionOf;
use rsm_core::Queryable;

type ReplyResult<M> =
    Result<Reply<<M as rsm_core::StateMachine>::Response, <M as Queryable>::Answer>, ClientError>;
type ReplySender<M> = async_channel::Sender<ReplyResult<M>>;

/// A client request on its way to the loop, with where to send the answer.
enum Request<M: Queryable> {
    Propose {
        command: Bytes,
        reply: ReplySender<M>,
    },
    Read {
        query: M::Query,
        reply: ReplySender<M>,
    },
    Reconfigure {
        membership: Membership,
        reply: ReplySender<M>,
    },
    TransferLeadership {
        to: NodeId,
    },
    Campaign,
}

impl<M: Queryable> Request<M> {
    fn into_reply(self) -> Option<ReplySender<M>> {
        match self {
            Request::Propose { reply, .. }
            | Request::Read { reply, .. }
            | Request::Reconfigure { reply, .. } => Some(reply),
            Request::TransferLeadership { .. } | Request::Campaign => None,
        }
    }
}

/// What woke the loop.
enum Event<M: Queryable> {
    Shutdown,
    Tick,
    Message(NodeId, Bytes),
    Request(Request<M>),
}

/// The node loop, ready to run: build it with [`NodeRunner::new`] (or
/// [`NodeRunner::with_inbound`], to read a channel a transport already feeds), then run it
/// on a thread of its own ([`NodeRunner::spawn_thread`]), on tokio (`spawn_tokio`, feature
/// `tokio`), or spawn the future [`NodeRunner::run`] on any executor.
pub struct NodeRunner<R: Replica, S: Storage, T: Transport, M: Queryable> {
    core: NodeCore<R, S, T, M>,
    inbound: async_channel::Receiver<(NodeId, Bytes)>,
    requests: async_channel::Receiver<Request<M>>,
    shutdown: async_channel::Receiver<()>,
    /// Held so that the shutdown channel closes only when asked, not when the last
    /// `Shutdown` handle is dropped.
    _shutdown_keepalive: async_channel::Sender<()>,
    /// Answer channels of accepted requests; bounded by `pending_requests_max` because
    /// only tickets the core accepted are kept.
    replies: HashMap<Ticket, ReplySender<M>>,
    /// Which queue a batch looks at first; flips every time.
    prefer_clients: bool,
}

impl<R: Replica, S: Storage, T: Transport, M: Queryable> fmt::Debug for NodeRunner<R, S, T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeRunner")
            .field("core", &self.core)
            .field("inbound_queued", &self.inbound.len())
            .field("requests_queued", &self.requests.len())
            .finish_non_exhaustive()
    }
}

/// The handles a running node is reached by.
#[derive(Debug)]
pub struct NodeHandles<M: Queryable> {
    /// Submits client requests.
    pub client: Client<M>,
    /// Where a transport delivers inbound messages: the loop's own queue, or `None` when
    /// the loop reads a channel of the caller's ([`NodeRunner::with_inbound`]).
    pub inbox: Option<Inbox>,
    /// Stops the loop.
    pub shutdown: Shutdown,
    /// The node's status and counters, refreshed once per batch.
    pub status: StatusView,
}

/// How the loop ended.
#[derive(Debug)]
pub struct Stopped<R: Replica, S: Storage, T: Transport, M: Queryable> {
    /// The core, stopped, with its storage, transport and state machine.
    pub core: NodeCore<R, S, T, M>,
    /// The fatal error that stopped it, or `None` after a requested shutdown.
    pub error: Option<NodeError<S::Error>>,
}

impl<R: Replica, S: Storage, T: Transport, M: Queryable> NodeRunner<R, S, T, M> {
    /// Wrap `core` in a loop with queues bounded by its configuration; a transport
    /// delivers into the loop's inbound queue through [`NodeHandles::inbox`].
    pub fn new(core: NodeCore<R, S, T, M>) -> (Self, NodeHandles<M>) {
        let (inbound_tx, inbound) = async_channel::bounded(core.config().inbound_queue_max);
        let (runner, mut handles) = Self::with_inbound(core, inbound);
        handles.inbox = Some(Inbox {
            inbound: inbound_tx,
        });
        (runner, handles)
    }

    /// Wrap `core` in a loop that reads peers' messages from `inbound`, a channel the
    /// caller made (transports such as rsm-tcp and rsm-rdma deliver into one), so that no
    /// task has to carry messages from one queue to another. The channel's own bound
    /// replaces `inbound_queue_max`; the loop closes it when it stops.
    pub fn with_inbound(
        core: NodeCore<R, S, T, M>,
        inbound: async_channel::Receiver<(NodeId, Bytes)>,
    ) -> (Self, NodeHandles<M>) {
        let config = *core.config();
        let status = core.status_view();
        let (requests_tx, requests) = async_channel::bounded(config.client_queue_max);
        let (shutdown_tx, shutdown) = async_channel::bounded(1);
        let runner = Self {
            core,
            inbound,
            requests,
            shutdown,
            _shutdown_keepalive: shutdown_tx.clone(),
            replies: HashMap::new(),
            prefer_clients: false,
        };
        let handles = NodeHandles {
            client: Client {
                requests: requests_tx,
            },
            inbox: None,
            shutdown: Shutdown {
                signal: shutdown_tx,
            },
            status,
        };
        (runner, handles)
    }

    /// Run until shut down or stopped by a fatal error.
    ///
    /// Each round waits for one event (unless writes are waiting for a sync), takes up to
    /// `batch_inputs_max` more that are already queued, then syncs once and answers the
    /// clients whose requests completed: group commit.
    pub async fn run(mut self, mut ticker: impl Ticker) -> Stopped<R, S, T, M> {
        let batch_inputs_max = self.core.config().batch_inputs_max;
        let result = 'rounds: loop {
            if self.shutdown.is_closed() {
                break Ok(());
            }
            if !self.core.needs_sync() {
                let event = self.next_event(&mut ticker).await;
                if matches!(event, Event::Shutdown) {
                    break Ok(());
                }
                if let Err(error) = self.handle(event) {
                    break Err(error);
                }
            }
            for _ in 0..batch_inputs_max {
                let Some(event) = self.try_next_event() else {
                    break;
                };
                if let Err(error) = self.handle(event) {
                    break 'rounds Err(error);
                }
            }
            let synced = self.core.sync();
            self.answer_completed();
            if let Err(error) = synced {
                break Err(error);
            }
        };
        self.finish(result.err())
    }

    async fn next_event(&mut self, ticker: &mut impl Ticker) -> Event<M> {
        let mut shutdown = pin!(self.shutdown.recv());
        let mut tick = pin!(ticker.next_tick());
        let mut inbound = pin!(self.inbound.recv());
        let mut requests = pin!(self.requests.recv());
        // A closed queue (every sender dropped) would resolve at once forever: skip it.
        let mut inbound_open = true;
        let mut requests_open = true;
        poll_fn(|cx| {
            if shutdown.as_mut().poll(cx).is_ready() {
                // Only `Shutdown::shutdown` closes it; no value is ever sent.
                return Poll::Ready(Event::Shutdown);
            }
            if tick.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Tick);
            }
            if inbound_open {
                match inbound.as_mut().poll(cx) {
                    Poll::Ready(Ok((from, bytes))) => {
                        return Poll::Ready(Event::Message(from, bytes));
                    }
                    Poll::Ready(Err(_)) => inbound_open = false,
                    Poll::Pending => {}
                }
            }
            if requests_open {
                match requests.as_mut().poll(cx) {
                    Poll::Ready(Ok(request)) => return Poll::Ready(Event::Request(request)),
                    Poll::Ready(Err(_)) => requests_open = false,
                    Poll::Pending => {}
                }
            }
            Poll::Pending
        })
        .await
    }

    /// An event already queued, alternating between peers and clients so neither starves.
    fn try_next_event(&mut self) -> Option<Event<M>> {
        self.prefer_clients = !self.prefer_clients;
        let prefer_clients = self.prefer_clients;
        let message = |r: &Self| r.inbound.try_recv().ok().map(|(f, b)| Event::Message(f, b));
        let request = |r: &Self| r.requests.try_recv().ok().map(Event::Request);
        if prefer_clients {
            request(self).or_else(|| message(self))
        } else {
            message(self).or_else(|| request(self))
        }
    }

    fn handle(&mut self, event: Event<M>) -> Result<(), NodeError<S::Error>> {
        match event {
            Event::Shutdown => Ok(()),
            Event::Tick => self.core.tick(),
            Event::Message(from, bytes) => self.core.receive(from, &bytes),
            Event::Request(request) => {
                // A fatal error met while handling a request surfaces at the round's sync.
                let (admitted, reply) = match request {
                    Request::Propose { command, reply } => (self.core.propose(command), reply),
                    Request::Read { query, reply } => (self.core.read(query), reply),
                    Request::Reconfigure { membership, reply } => {
                        (self.core.reconfigure(membership), reply)
                    }
                    Request::TransferLeadership { to } => {
                        return self.core.transfer_leadership(to);
                    }
                    Request::Campaign => return self.core.campaign(),
                };
                match admitted {
                    Ok(ticket) => {
                        self.replies.insert(ticket, reply);
                    }
                    Err(error) => {
                        let _ = reply.try_send(Err(error));
                    }
                }
                Ok(())
            }
        }
    }

    fn answer_completed(&mut self) {
        let replies = &mut self.replies;
        for CompletionOf::<M> { ticket, result } in self.core.drain_completions() {
            if let Some(reply) = replies.remove(&ticket) {
                // The client may have given up waiting; that is its business.
                let _ = reply.try_send(result);
            }
        }
    }

    fn finish(mut self, error: Option<NodeError<S::Error>>) -> Stopped<R, S, T, M> {
        if error.is_none() {
            // A clean shutdown makes what was written durable first; if that fails, it is
            // the error the node stopped with.
            if let Err(sync_error) = self.core.sync() {
                self.core.stop();
                self.answer_completed();
                return self.finish_queues(Some(sync_error));
            }
        }
        self.core.stop();
        self.answer_completed();
        self.finish_queues(error)
    }

    fn finish_queues(self, error: Option<NodeError<S::Error>>) -> Stopped<R, S, T, M> {
        self.requests.close();
        self.inbound.close();
        while let Ok(request) = self.requests.try_recv() {
            if let Some(reply) = request.into_reply() {
                // Never handed to the replica: it certainly did not happen.
                let _ = reply.try_send(Err(ClientError::NotRunning));
            }
        }
        debug_assert!(
            self.replies.is_empty(),
            "every accepted request was answered"
        );
        Stopped {
            core: self.core,
            error,
        }
    }
}

impl<R, S, T, M> NodeRunner<R, S, T, M>
where
    R: Replica + Send + 'static,
    R::Message: Send,
    S: Storage + Send + 'static,
    T: Transport + Send + 'static,
    M: Queryable + Send + 'static,
    M::Query: Send,
    M::Answer: Send,
    M::Response: Send,
{
    /// Run the loop on a new thread called `name`, with no async runtime, ticking from
    /// `ticker` ([`IntervalTicker`](crate::IntervalTicker) in production,
    /// [`ManualClock`](crate::ManualClock) in tests). Its fsyncs block only that thread.
    /// Fails only when the thread cannot be created.
    pub fn spawn_thread(
        self,
        name: impl Into<String>,
        ticker: impl Ticker + Send + 'static,
    ) -> std::io::Result<NodeThread<R, S, T, M>> {
        thread_runner::spawn(name.into(), self.run(ticker)).map(NodeThread::from)
    }

    /// Spawn the loop on the current tokio runtime, ticking every `tick_period` of
    /// tokio's clock. Its fsyncs block the worker thread it runs on: give it a runtime of
    /// its own (or use [`NodeRunner::spawn_thread`]) when other tasks must not wait for
    /// the disk. Must be called inside a tokio runtime with the time driver enabled.
    #[cfg(feature = "tokio")]
    pub fn spawn_tokio(self, tick_period: std::time::Duration) -> NodeTask<R, S, T, M> {
        tokio::spawn(self.run(TokioTicker::new(tick_period)))
    }
}

/// Submits requests to a running node. Cheap to clone; every clone shares the node's
/// bounded request queue, and a request into a full queue fails at once with a definite
/// `Busy`.
pub struct Client<M: Queryable> {
    requests: async_channel::Sender<Request<M>>,
}

impl<M: Queryable> Clone for Client<M> {
    fn clone(&self) -> Self {
        Self {
            requests: self.requests.clone(),
        }
    }
}

impl<M: Queryable> fmt::Debug for Client<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("queued", &self.requests.len())
            .finish()
    }
}

impl<M: Queryable> Client<M> {
    /// Replicate `command` and return the state machine's response to it.
    pub async fn propose(&self, command: Bytes) -> Result<M::Response, ClientError> {
        let reply = self
            .submit(|reply| Request::Propose { command, reply })
            .await?;
        match reply {
            Reply::Applied { response, .. } => Ok(response),
            _ => unreachable!("a proposal is answered with Applied"),
        }
    }

    /// Answer `query` linearizably from the state machine.
    pub async fn read(&self, query: M::Query) -> Result<M::Answer, ClientError> {
        match self.submit(|reply| Request::Read { query, reply }).await? {
            Reply::Read { answer, .. } => Ok(answer),
            _ => unreachable!("a read is answered with Read"),
        }
    }

    /// Change the membership; returns the index at which the change committed.
    pub async fn reconfigure(&self, membership: Membership) -> Result<LogIndex, ClientError> {
        let reply = self
            .submit(|reply| Request::Reconfigure { membership, reply })
            .await?;
        match reply {
            Reply::Reconfigured { index } => Ok(index),
            _ => unreachable!("a reconfiguration is answered with Reconfigured"),
        }
    }

    /// Ask the node to hand leadership to `to`; nothing is answered.
    pub fn transfer_leadership(&self, to: NodeId) -> Result<(), ClientError> {
        self.requests
            .try_send(Request::TransferLeadership { to })
            .map_err(queue_error)
    }

    /// Ask the node to start an election now; nothing is answered.
    pub fn campaign(&self) -> Result<(), ClientError> {
        self.requests
            .try_send(Request::Campaign)
            .map_err(queue_error)
    }

    async fn submit(
        &self,
        request: impl FnOnce(ReplySender<M>) -> Request<M>,
    ) -> Result<Reply<M::Response, M::Answer>, ClientError> {
        let (reply, answer) = async_channel::bounded(1);
        self.requests
            .try_send(request(reply))
            .map_err(queue_error)?;
        match answer.recv().await {
            Ok(result) => result,
            // The loop dropped the request unanswered: it ended with the request in flight.
            Err(_) => Err(ClientError::Shutdown),
        }
    }
}

fn queue_error<T>(error: async_channel::TrySendError<T>) -> ClientError {
    match error {
        async_channel::TrySendError::Full(_) => ClientError::Rejected(RejectReason::Busy),
        async_channel::TrySendError::Closed(_) => ClientError::NotRunning,
    }
}

/// Where a transport hands the node what it received. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Inbox {
    inbound: async_channel::Sender<(NodeId, Bytes)>,
}

impl Inbox {
    /// Queue a message from `from` without waiting. Returns false when it was dropped
    /// because the queue is full or the node has stopped; consensus tolerates the loss.
    pub fn try_deliver(&self, from: NodeId, bytes: Bytes) -> bool {
        self.inbound.try_send((from, bytes)).is_ok()
    }

    /// Queue a message from `from`, waiting for room (back-pressure for a transport that
    /// can slow its peer down). Returns false when the node has stopped.
    pub async fn deliver(&self, from: NodeId, bytes: Bytes) -> bool {
        self.inbound.send((from, bytes)).await.is_ok()
    }
}

/// Stops a node loop. Dropping it does not stop the node.
#[derive(Clone, Debug)]
pub struct Shutdown {
    signal: async_channel::Sender<()>,
}

impl Shutdown {
    /// Ask the loop to stop: it syncs what was written, ends pending requests with an
    /// indefinite `Shutdown`, and refuses queued ones with a definite `NotRunning`.
    pub fn shutdown(&self) {
        self.signal.close();
    }
}
