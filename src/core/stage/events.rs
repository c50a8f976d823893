//! Progress events of stage operations, broadcast to `events.subscribe` listeners.

use super::model::Stage;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: String,
    /// `SUBSCRIPTION/NAME`
    pub stage: String,
    pub uuid: uuid::Uuid,
    pub operation: String,
    pub step: String,
    pub state: String,
    pub message: String,
}

impl Event {
    pub fn new(stage: &Stage, operation: &str, step: &str, message: impl Into<String>) -> Event {
        Event {
            at: crate::core::time::rfc3339(&crate::core::time::now()),
            stage: stage.reference(),
            uuid: stage.uuid,
            operation: operation.to_string(),
            step: step.to_string(),
            state: stage.state.as_str().to_string(),
            message: message.into(),
        }
    }
}

pub struct Events(broadcast::Sender<Event>);

impl Events {
    pub fn new() -> Self {
        Events(broadcast::channel(1024).0)
    }

    /// No listener is fine: events are for watching, not for state.
    pub fn send(&self, e: Event) {
        let _ = self.0.send(e);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.subscribe()
    }
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}
