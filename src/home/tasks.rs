//! The loop's table of unfinished tasks ([`TaskTable`]): which tasks
//! `close()` destroys (TASK-8) and `all_tasks()` lists, and where a task's
//! `Send` coroutine waits between steps.
//!
//! A slab: a task takes a slot when it is made and gives it back when it
//! finishes, and a later task may reuse the slot. A task is named by its
//! [`TaskKey`] — slot and id — so that a key kept after its task finished
//! (a step request still in the inbox, a forwarded cancellation) finds
//! nothing rather than the slot's next task. Inserting, finding and
//! removing is an index into a vector: no hashing per task step, and one
//! entry's size per task where a hash map kept about twice that.

use super::erased::{AnyTask, SendCoroutine};
use crate::handle::TaskKey;
use slab::Slab;
use std::pin::Pin;
use std::sync::Arc;

/// An unfinished task in its loop's table.
pub(crate) struct TaskEntry {
    /// The task.
    pub(crate) task: Arc<dyn AnyTask>,
    /// The coroutine of a task made with `create_task`: `Some` from creation
    /// until it returns or fails, except while a step polls it (the step
    /// takes it out and puts it back if it is still pending). Always `None`
    /// for a local task, whose coroutine the local home keeps.
    pub(crate) coro: Option<Pin<Box<dyn SendCoroutine>>>,
}

impl TaskEntry {
    /// The task is local (`create_task_local`): its coroutine is in its
    /// local home.
    pub(crate) fn is_local(&self) -> bool {
        self.task.is_local()
    }
}

/// The loop's unfinished tasks; see the [module docs](self).
#[derive(Default)]
pub(crate) struct TaskTable {
    /// The entries by slot.
    slots: Slab<TaskEntry>,
}

impl TaskTable {
    /// Adds a task; returns its slot.
    pub(crate) fn insert(&mut self, entry: TaskEntry) -> usize {
        self.slots.insert(entry)
    }

    /// The entry of the task `key` names, if it is still unfinished.
    pub(crate) fn get(&self, key: TaskKey) -> Option<&TaskEntry> {
        self.slots.get(key.slot).filter(|e| e.task.id() == key.id)
    }

    /// [`get`](Self::get), mutable.
    pub(crate) fn get_mut(&mut self, key: TaskKey) -> Option<&mut TaskEntry> {
        self.slots
            .get_mut(key.slot)
            .filter(|e| e.task.id() == key.id)
    }

    /// Removes the task `key` names, if it is still unfinished.
    pub(crate) fn remove(&mut self, key: TaskKey) -> Option<TaskEntry> {
        self.get(key)?;
        self.slots.try_remove(key.slot)
    }

    /// The entries, in no particular order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &TaskEntry> {
        self.slots.iter().map(|(_, e)| e)
    }

    /// Removes every entry `take` selects, in slot order.
    pub(crate) fn remove_where(&mut self, take: impl Fn(&TaskEntry) -> bool) -> Vec<TaskEntry> {
        let slots: Vec<usize> = self
            .slots
            .iter()
            .filter(|(_, e)| take(e))
            .map(|(slot, _)| slot)
            .collect();
        slots.into_iter().map(|s| self.slots.remove(s)).collect()
    }

    /// Every entry, leaving the table empty.
    pub(crate) fn take_all(&mut self) -> Vec<TaskEntry> {
        std::mem::take(&mut self.slots)
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }
}
