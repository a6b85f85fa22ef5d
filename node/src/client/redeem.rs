//! Redeeming an invitation: the one request a key not yet enrolled sends.

use super::{endpoint, resolve, with_replica, Link, SharedReplica, SyncFailure};
use accordo_protocol::wire::{Request, Response};
use std::time::Duration;

/// Sends an invitation's redemption (a registry change signed by this node)
/// to the relay, before any hello: the key is not enrolled until it lands.
/// On success the change is acknowledged in the outbox.
pub async fn redeem(
    replica: SharedReplica,
    change: accordo_protocol::envelope::SignedChange,
    timeout: Duration,
) -> Result<(), SyncFailure> {
    let addr = relay_label(&replica);
    let relay_addr = resolve(&addr).await?;
    let endpoint = {
        let r = replica.lock().expect("replica mutex poisoned");
        endpoint(&r, relay_addr)?
    };
    let work = async {
        let (link, network) = Link::dial(&endpoint, &replica).await?;
        let req = Request::Redeem(accordo_protocol::wire::RedeemRequest { network, change });
        let out = match link.call(&req, Duration::ZERO).await? {
            (Response::Redeemed(ack), _) => {
                with_replica(&replica, move |r| {
                    r.store.write(|tx| tx.acknowledge(&[ack.hash]))?;
                    Ok(())
                })
                .await
            }
            (Response::Error(e), _) => Err(SyncFailure::RedeemRefused(e.message)),
            (other, _) => Err(SyncFailure::RelayFault(format!(
                "unexpected answer to a redemption: {other:?}"
            ))),
        };
        link.close();
        out
    };
    let result = match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(SyncFailure::Unreachable {
            addr,
            detail: format!("no answer within {}s", timeout.as_secs()),
        }),
    };
    endpoint.close().await;
    result
}

fn relay_label(replica: &SharedReplica) -> String {
    let r = replica.lock().expect("replica mutex poisoned");
    r.settings.relay.host_port.clone()
}
