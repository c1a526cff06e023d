//! Turns a gRPC stream of index chunks into a blocking `Read`, so the (synchronous) streaming
//! decompressor and parser can consume an index as it arrives, with bounded buffering.

use std::io::Read;

use debcover_proto::v1 as pb;
use tokio::sync::mpsc;
use tonic::Streaming;

/// A blocking reader fed by a task that pulls chunks off the gRPC stream.
pub struct ChunkReader {
    rx: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
}

impl ChunkReader {
    /// Start pulling `stream` (after its header) into a reader. At most 8 chunks are buffered.
    pub fn spawn(mut stream: Streaming<pb::ArchiveChunk>) -> Self {
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(async move {
            loop {
                let Ok(next) = tokio::time::timeout(super::IDLE_STREAM_LIMIT, stream.message()).await else {
                    let _ = tx
                        .send(Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("no data for {} s: the upload stalled", super::IDLE_STREAM_LIMIT.as_secs()),
                        )))
                        .await;
                    break;
                };
                let item = match next {
                    Ok(Some(pb::ArchiveChunk { chunk: Some(pb::archive_chunk::Chunk::Data(d)) })) => Ok(d),
                    Ok(Some(_)) => Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "a second header in the middle of the index stream",
                    )),
                    Ok(None) => break,
                    Err(status) => Err(std::io::Error::other(format!("stream aborted: {}", status.message()))),
                };
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    break;
                }
            }
        });
        ChunkReader { rx, current: Vec::new(), pos: 0 }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
