from fastapi import APIRouter

router = APIRouter(prefix="/services", tags=["relay"])
