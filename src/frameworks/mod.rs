//! The concurrency frameworks beside asyncio, read from outside as asyncio is: each one's
//! units of work as `tasks[]`, what they wait for and who holds it. One module per framework.

pub mod celery;
pub mod celery_app;
pub mod celery_routes;
pub mod trio;
pub mod twisted;
pub mod versions;
